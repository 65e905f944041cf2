import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassTransform;
import java.lang.classfile.attribute.ModuleHashesAttribute;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Drops the ModuleHashes attribute from a module-info.class (gpu/pack.sh, {@code java StripModuleHashes.java FILE}).
 * java.base records the hashes of the JDK's own packaged modules; jmods rebuilt from a runtime
 * image hash differently, and jlink would refuse them for the mismatch.
 */
final class StripModuleHashes {
    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        ClassFile cf = ClassFile.of();
        Files.write(file, cf.transformClass(cf.parse(Files.readAllBytes(file)), ClassTransform.dropping(e -> e instanceof ModuleHashesAttribute)));
    }
}
