package org.prefloop.train.cli;

import org.prefloop.train.RunListener;

import java.io.PrintStream;
import java.util.Locale;
import java.util.Map;

/**
 * The CLI's progress: one line per stage, rewritten in place on a terminal (a new line every ten
 * seconds otherwise): step, loss, reward accuracy for DPO, the latest validation loss, tokens/s, ETA.
 */
final class ProgressLine implements RunListener {
    private final PrintStream err;
    private final boolean terminal;
    private long stageStart;
    private int firstStep = -1;
    private long lastPrinted;
    private Double evalLoss;
    private boolean open;

    ProgressLine(PrintStream err, boolean terminal) {
        this.err = err;
        this.terminal = terminal;
    }

    @Override
    public void stageStarted(String stage, int totalSteps) {
        finish();
        stageStart = System.nanoTime();
        firstStep = -1;
        evalLoss = null;
        err.println(stage + ": " + totalSteps + " steps");
    }

    @Override
    public void step(String stage, int step, int totalSteps, Map<String, Double> m) {
        if (firstStep < 0) firstStep = step - 1;
        double elapsed = (System.nanoTime() - stageStart) / 1e9;
        double perStep = elapsed / Math.max(1, step - firstStep);
        long eta = Math.round(perStep * (totalSteps - step));
        StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%s step %d/%d  loss %.4f", stage, step, totalSteps, m.get("loss")));
        if (m.containsKey("rewards/accuracies")) {
            line.append(String.format(Locale.ROOT, "  reward acc %.2f  margin %.3f", m.get("rewards/accuracies"), m.get("rewards/margins")));
        }
        if (evalLoss != null) line.append(String.format(Locale.ROOT, "  eval %.4f", evalLoss));
        line.append(String.format(Locale.ROOT, "  %,.0f tok/s  ETA %d:%02d", m.getOrDefault("tokens_per_second", 0.0), eta / 60, eta % 60));
        long now = System.nanoTime();
        if (terminal) {
            err.print("\r" + line + "   ");
            open = true;
        } else if (now - lastPrinted > 10_000_000_000L || step == totalSteps) {
            err.println(line);
            lastPrinted = now;
        }
    }

    @Override
    public void evaluated(String stage, int step, Map<String, Double> metrics) {
        evalLoss = metrics.get("eval_loss");
    }

    @Override
    public void message(String text) {
        finish();
        err.println(text);
    }

    void finish() {
        if (open) err.println();
        open = false;
    }
}
