package org.prefloop;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideOutsideOfPackages;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The house rules of docs/ARCHITECTURE.md, enforced on the compiled main classes: the core
 * (model, lora, train) runs without Quarkus or Jakarta, as the `prefloop train` CLI and a training
 * worker need, and knows nothing of the service around it; and no two capability packages depend
 * on each other in a circle.
 */
class ArchitectureTest {
    private static final String[] CORE = {"org.prefloop.model..", "org.prefloop.lora..", "org.prefloop.train.."};
    private static JavaClasses classes;

    @BeforeAll
    static void importMainClasses() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("org.prefloop");
        assertTrue(classes.contain("org.prefloop.model.LlamaModel"), "imported the main classes");
    }

    @Test
    void theCoreDependsOnNoFramework() {
        noClasses().that().resideInAnyPackage(CORE)
                .should().dependOnClassesThat().resideInAnyPackage(
                        "io.quarkus..", "jakarta..", "javax.inject..", "org.eclipse.microprofile..", "io.smallrye..",
                        "io.vertx..", "org.hibernate..", "org.apache.kafka..")
                .because("model, lora and train run in the CLI and on a bare training worker")
                .check(classes);
    }

    @Test
    void theCoreReadsAndWritesJsonWithJacksonOnly() {
        noClasses().that().resideInAnyPackage(CORE)
                .should().dependOnClassesThat().resideInAPackage("com.google.gson..")
                .because("one JSON library in the core: Gson only comes with DJL")
                .check(classes);
    }

    @Test
    void theCoreDependsOnNothingOfTheServiceAroundIt() {
        noClasses().that().resideInAnyPackage(CORE)
                .should().dependOnClassesThat(resideInAPackage("org.prefloop..").and(resideOutsideOfPackages(CORE)))
                .because("the service builds on the core, never the other way round")
                .check(classes);
    }

    @Test
    void insideTheCoreModelIsBelowLoraBelowTrain() {
        noClasses().that().resideInAPackage("org.prefloop.model..")
                .should().dependOnClassesThat().resideInAnyPackage("org.prefloop.lora..", "org.prefloop.train..")
                .check(classes);
        noClasses().that().resideInAPackage("org.prefloop.lora..")
                .should().dependOnClassesThat().resideInAPackage("org.prefloop.train..")
                .check(classes);
    }

    @Test
    void theRegistryKnowsNothingOfRunsOrServing() {
        noClasses().that().resideInAPackage("org.prefloop.registry..")
                .should().dependOnClassesThat().resideInAnyPackage("org.prefloop.runs..", "org.prefloop.serve..")
                .because("runs register versions and serving resolves them; the registry serves both")
                .check(classes);
    }

    @Test
    void noPackageCycles() {
        slices().matching("org.prefloop.(*)..").should().beFreeOfCycles().check(classes);
    }
}
