package org.prefloop;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;
import org.prefloop.train.cli.TrainCli;

/**
 * The one entry point: {@code prefloop train|preflight|init-model ...} runs the trainer as a
 * plain program (no server, no broker, no database); anything else starts the service.
 */
@QuarkusMain
public final class Main {
    Main() {
    }

    public static void main(String... args) {
        if (args.length > 0 && TrainCli.COMMANDS.contains(args[0])) {
            System.exit(TrainCli.run(args, System.out, System.err));
        }
        Quarkus.run(args);
    }
}
