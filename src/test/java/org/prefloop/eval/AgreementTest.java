package org.prefloop.eval;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AgreementTest {

    private static List<Agreement.Label> twoRaters(int bothA, int bothB, int firstAsecondB, int firstBsecondA) {
        List<Agreement.Label> labels = new ArrayList<>();
        int item = 0;
        int[][] cells = {{bothA, 'A', 'A'}, {bothB, 'B', 'B'}, {firstAsecondB, 'A', 'B'}, {firstBsecondA, 'B', 'A'}};
        for (int[] cell : cells) {
            for (int k = 0; k < cell[0]; k++, item++) {
                labels.add(new Agreement.Label("c" + item, "ann", String.valueOf((char) cell[1])));
                labels.add(new Agreement.Label("c" + item, "bob", String.valueOf((char) cell[2])));
            }
        }
        return labels;
    }

    @Test
    void cohensKappaOfTheTextbookTable() {
        // 50 items: 20 both A, 15 both B, 5 A/B, 10 B/A. Observed 0.70; chance 0.5*0.6 + 0.5*0.4 = 0.50.
        assertEquals(0.4, Agreement.cohensKappa(twoRaters(20, 15, 5, 10), "ann", "bob"), 1e-12);
    }

    @Test
    void kappaIsOneForPerfectAgreementAndNegativeForSystematicDisagreement() {
        assertEquals(1.0, Agreement.cohensKappa(twoRaters(10, 7, 0, 0), "ann", "bob"), 1e-12);
        assertTrue(Agreement.cohensKappa(twoRaters(0, 0, 10, 10), "ann", "bob") < -0.99);
    }

    @Test
    void krippendorffAlphaMatchesThePublishedNominalExample() {
        // Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units,
        // missing values; the published nominal alpha is 0.743.
        String[][] data = {
                {"1", "2", "3", "3", "2", "1", "4", "1", "2", null, null, null},
                {"1", "2", "3", "3", "2", "2", "4", "1", "2", "5", null, "3"},
                {null, "3", "3", "3", "2", "3", "4", "2", "2", "5", "1", null},
                {"1", "2", "3", "3", "2", "4", "4", "1", "2", "5", "1", null},
        };
        List<Agreement.Label> labels = new ArrayList<>();
        for (int observer = 0; observer < data.length; observer++) {
            for (int unit = 0; unit < data[observer].length; unit++) {
                if (data[observer][unit] != null) labels.add(new Agreement.Label("u" + unit, "o" + observer, data[observer][unit]));
            }
        }
        assertEquals(0.743, Agreement.krippendorffAlpha(labels), 0.0005);
    }

    @Test
    void agreementWithMajorityLeavesTheAnnotatorOut() {
        List<Agreement.Label> labels = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            labels.add(new Agreement.Label("c" + i, "ann", "A"));
            labels.add(new Agreement.Label("c" + i, "bob", "A"));
            labels.add(new Agreement.Label("c" + i, "eve", i == 0 ? "A" : "B"));
        }
        Map<String, Double> share = Agreement.agreementWithMajority(labels);
        assertEquals(0.25, share.get("eve"), 1e-12);
        // ann's others are bob and eve: on c1..c3 they split, so only c0 counts, and ann agrees there.
        assertEquals(1.0, share.get("ann"), 1e-12);
    }

    @Test
    void consensusRecordsTheMajorityAndItsShare() {
        List<Agreement.Label> labels = List.of(
                new Agreement.Label("c1", "ann", "A"), new Agreement.Label("c1", "bob", "A"), new Agreement.Label("c1", "eve", "B"),
                new Agreement.Label("c2", "ann", "A"), new Agreement.Label("c2", "bob", "B"));
        Map<String, Agreement.Consensus> c = Agreement.consensus(labels);
        assertEquals(new Agreement.Consensus("A", 2 / 3.0, 3), c.get("c1"));
        assertEquals(null, c.get("c2").label());
        assertEquals(0.5, c.get("c2").agreement(), 1e-12);
    }

    @Test
    void positionBiasCountsOnlyDecisiveChoices() {
        assertEquals(0.75, Agreement.shareOfLeftChoices(List.of("A", "A", "A", "B", "tie", "both_bad")), 1e-12);
    }
}
