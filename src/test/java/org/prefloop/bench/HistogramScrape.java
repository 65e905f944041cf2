package org.prefloop.bench;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Histograms read from one Prometheus scrape ({@code /q/metrics}), so that two scrapes taken
 * around a workload give that workload's own distribution: cumulative bucket counts, counts and
 * sums subtract. Percentiles are interpolated linearly inside a bucket, so they carry the
 * buckets' resolution (Micrometer's percentile histogram: steps of about a third).
 */
final class HistogramScrape {
    /** One histogram: cumulative count per upper bound, total count and sum. */
    record Histogram(TreeMap<Double, Double> cumulative, double count, double sum) {
        Histogram minus(Histogram before) {
            TreeMap<Double, Double> c = new TreeMap<>();
            cumulative.forEach((le, n) -> c.put(le, n - (before == null ? 0 : before.cumulative.getOrDefault(le, 0.0))));
            return new Histogram(c, count - (before == null ? 0 : before.count), sum - (before == null ? 0 : before.sum));
        }

        double mean() {
            return count == 0 ? Double.NaN : sum / count;
        }

        double quantile(double q) {
            if (count == 0) return Double.NaN;
            double rank = q * count;
            double lower = 0;
            double below = 0;
            for (Map.Entry<Double, Double> e : cumulative.entrySet()) {
                if (e.getValue() >= rank) {
                    double upper = e.getKey().isInfinite() ? lower : e.getKey();
                    double inBucket = e.getValue() - below;
                    return inBucket <= 0 ? upper : lower + (upper - lower) * (rank - below) / inBucket;
                }
                lower = e.getKey();
                below = e.getValue();
            }
            return lower;
        }
    }

    private final Map<String, Histogram> histograms;
    private final Map<String, Double> values; // counters and gauges: one unlabelled sample each

    private HistogramScrape(Map<String, Histogram> histograms, Map<String, Double> values) {
        this.histograms = histograms;
        this.values = values;
    }

    /** The histograms of a scrape's text whose names start with {@code prefix}. */
    static HistogramScrape parse(String text, String prefix) {
        Map<String, TreeMap<Double, Double>> buckets = new LinkedHashMap<>();
        Map<String, Double> counts = new LinkedHashMap<>();
        Map<String, Double> sums = new LinkedHashMap<>();
        Map<String, Double> values = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            if (!line.startsWith(prefix)) continue;
            int space = line.lastIndexOf(' ');
            String series = line.substring(0, space);
            double value = Double.parseDouble(line.substring(space + 1));
            int brace = series.indexOf('{');
            String name = brace < 0 ? series : series.substring(0, brace);
            if (name.endsWith("_bucket")) {
                int le = series.indexOf("le=\"");
                String bound = series.substring(le + 4, series.indexOf('"', le + 4));
                buckets.computeIfAbsent(name.substring(0, name.length() - 7), k -> new TreeMap<>())
                        .put(bound.equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(bound), value);
            } else if (name.endsWith("_count")) {
                counts.put(name.substring(0, name.length() - 6), value);
            } else if (name.endsWith("_sum")) {
                sums.put(name.substring(0, name.length() - 4), value);
            } else if (brace < 0) {
                values.put(name, value);
            }
        }
        Map<String, Histogram> out = new LinkedHashMap<>();
        buckets.forEach((name, b) -> out.put(name, new Histogram(b, counts.getOrDefault(name, 0.0), sums.getOrDefault(name, 0.0))));
        return new HistogramScrape(out, values);
    }

    /** {@code name}'s observations since {@code before}. */
    Histogram since(HistogramScrape before, String name) {
        Histogram now = histograms.get(name);
        if (now == null) return new Histogram(new TreeMap<>(), 0, 0);
        return now.minus(before.histograms.get(name));
    }

    /**
     * The engine's breakdown of time to first token between two scrapes, one line: p50/p99 in ms
     * of each phase ({@code FirstTokenMeters}), the rows and tokens of the prefill passes shared,
     * and the service's own request → first chunk written.
     */
    String breakdownSince(HistogramScrape before) {
        List<String> parts = new ArrayList<>();
        String[][] timers = {{"first token (engine)", "prefloop_serve_first_token_seconds"}, {"in-progress wait", "prefloop_serve_queue_in_progress_seconds"},
                {"later queue", "prefloop_serve_queue_after_seconds"}, {"prefill wait", "prefloop_serve_prefill_wait_seconds"},
                {"prefill", "prefloop_serve_prefill_seconds"}, {"emit", "prefloop_serve_first_token_emit_seconds"},
                {"decode step", "prefloop_serve_step_seconds"}, {"first chunk (HTTP)", "prefloop_serve_first_chunk_seconds"}};
        for (String[] t : timers) {
            Histogram h = since(before, t[1]);
            parts.add(String.format(Locale.ROOT, "%s %.0f/%.0f", t[0], h.quantile(.5) * 1e3, h.quantile(.99) * 1e3));
        }
        Histogram rows = since(before, "prefloop_serve_prefill_rows");
        Histogram tokens = since(before, "prefloop_serve_prefill_tokens");
        String inside = "prefloop_serve_admitted_inside_step_total";
        return String.join(", ", parts) + String.format(Locale.ROOT, " ms (p50/p99); prefill rows mean %.1f, tokens mean %.1f; %d first tokens, %.0f of them inside a step",
                rows.mean(), tokens.mean(), (long) since(before, "prefloop_serve_first_token_seconds").count(),
                values.getOrDefault(inside, 0.0) - before.values.getOrDefault(inside, 0.0));
    }
}
