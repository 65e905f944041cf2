package org.prefloop.eval;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BradleyTerryTest {

    @Test
    void threeWinsInFourIsAStrengthRatioOfThree() {
        List<BradleyTerry.Match> matches = new ArrayList<>();
        for (int i = 0; i < 300; i++) matches.add(new BradleyTerry.Match("v2", "v1", BradleyTerry.Outcome.FIRST_WINS));
        for (int i = 0; i < 100; i++) matches.add(new BradleyTerry.Match("v2", "v1", BradleyTerry.Outcome.SECOND_WINS));
        Map<String, Double> r = BradleyTerry.fit(matches).stream()
                .collect(Collectors.toMap(BradleyTerry.Rating::version, BradleyTerry.Rating::rating));
        // Elo difference of a strength ratio of 3 is 400*log10(3) = 190.8; the weak prior pulls it in a little.
        assertEquals(400 * Math.log10(3), r.get("v2") - r.get("v1"), 2.0);
        assertEquals(2000, r.get("v1") + r.get("v2"), 1e-6, "ratings are anchored at a mean of 1000");
        assertEquals(0.75, BradleyTerry.winRate(matches, "v2", "v1"), 1e-12);
        assertEquals(0.25, BradleyTerry.winRate(matches, "v1", "v2"), 1e-12);
    }

    @Test
    void recoversTheOrderOfSimulatedVersions() {
        double[] strength = {1, 2, 4, 8};
        Random rnd = new Random(7);
        List<BradleyTerry.Match> matches = new ArrayList<>();
        for (int k = 0; k < 4000; k++) {
            int a = rnd.nextInt(4);
            int b = (a + 1 + rnd.nextInt(3)) % 4;
            boolean aWins = rnd.nextDouble() < strength[a] / (strength[a] + strength[b]);
            matches.add(new BradleyTerry.Match("v" + a, "v" + b, aWins ? BradleyTerry.Outcome.FIRST_WINS : BradleyTerry.Outcome.SECOND_WINS));
        }
        List<BradleyTerry.Rating> ratings = BradleyTerry.fit(matches);
        assertEquals(List.of("v3", "v2", "v1", "v0"), ratings.stream().map(BradleyTerry.Rating::version).toList());
        double step = 400 * Math.log10(2);
        for (int i = 0; i < 3; i++) {
            assertEquals(step, ratings.get(i).rating() - ratings.get(i + 1).rating(), 25.0);
        }
    }

    @Test
    void tiesSplitEvenlyAndAnUnbeatenVersionStaysFinite() {
        List<BradleyTerry.Match> matches = List.of(
                new BradleyTerry.Match("a", "b", BradleyTerry.Outcome.TIE),
                new BradleyTerry.Match("a", "b", BradleyTerry.Outcome.TIE),
                new BradleyTerry.Match("c", "a", BradleyTerry.Outcome.FIRST_WINS));
        Map<String, BradleyTerry.Rating> r = BradleyTerry.fit(matches).stream()
                .collect(Collectors.toMap(BradleyTerry.Rating::version, x -> x));
        assertTrue(Double.isFinite(r.get("c").rating()));
        assertTrue(r.get("c").rating() > r.get("a").rating());
        assertEquals(1.0, r.get("a").wins(), 1e-12);
        assertEquals(3, r.get("a").matches());
    }
}
