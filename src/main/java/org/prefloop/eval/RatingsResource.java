package org.prefloop.eval;

import jakarta.annotation.security.RolesAllowed;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.identity.User;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.List;
import java.util.TreeSet;

/**
 * Win rates and Bradley-Terry ratings of model versions from head-to-head comparisons (the two
 * responses written by different versions) and their judgments. {@code judges=include} (the
 * default) counts human and judge labels, {@code exclude} humans only, {@code only} judges only.
 * "Both bad" says nothing about which version is better and is left out; a tie counts half.
 */
@Path("/api/ratings")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class RatingsResource {

    public record WinRate(String version, String opponent, double winRate, double low, double high, int matches) {
    }

    /** A version's Bradley-Terry rating with its 95% bootstrap interval (matches resampled, the model refitted). */
    public record Rated(String version, double rating, double low, double high, double wins, int matches) {
    }

    public record RatingsView(List<Rated> ratings, List<WinRate> winRates, int matches) {
    }

    static final int SAMPLES = 200;

    @GET
    public RatingsView ratings(@QueryParam("judges") String judges) {
        List<BradleyTerry.Match> matches = HeadToHead.matches(judges);
        TreeSet<String> versions = new TreeSet<>();
        matches.forEach(m -> {
            versions.add(m.first());
            versions.add(m.second());
        });
        List<WinRate> rates = new ArrayList<>();
        for (String v : versions) {
            for (String o : versions) {
                if (v.equals(o)) continue;
                BradleyTerry.Interval w = BradleyTerry.winRateInterval(matches, v, o);
                if (w.matches() > 0) rates.add(new WinRate(v, o, w.estimate(), w.low(), w.high(), w.matches()));
            }
        }
        return new RatingsView(matches.isEmpty() ? List.of() : rated(matches), rates, matches.size());
    }

    /** The fit on all matches, each rating with the 2.5th and 97.5th percentiles of its refits on resampled matches. */
    static List<Rated> rated(List<BradleyTerry.Match> matches) {
        Map<String, double[]> samples = new HashMap<>();
        Random random = new Random(17);
        for (int b = 0; b < SAMPLES; b++) {
            List<BradleyTerry.Match> resampled = new ArrayList<>(matches.size());
            for (int i = 0; i < matches.size(); i++) resampled.add(matches.get(random.nextInt(matches.size())));
            for (BradleyTerry.Rating r : BradleyTerry.fit(resampled)) {
                double[] xs = samples.computeIfAbsent(r.version(), k -> {
                    double[] fresh = new double[SAMPLES];
                    Arrays.fill(fresh, Double.NaN);   // a resample without the version says nothing about it
                    return fresh;
                });
                xs[b] = r.rating();
            }
        }
        List<Rated> out = new ArrayList<>();
        for (BradleyTerry.Rating r : BradleyTerry.fit(matches)) {
            double[] xs = Arrays.stream(samples.get(r.version())).filter(Double::isFinite).sorted().toArray();
            out.add(new Rated(r.version(), r.rating(), xs[(int) (0.025 * (xs.length - 1))], xs[(int) Math.ceil(0.975 * (xs.length - 1))],
                    r.wins(), r.matches()));
        }
        return out;
    }
}
