package org.prefloop.eval;

import io.quarkus.narayana.jta.QuarkusTransaction;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;

import java.util.ArrayList;
import java.util.List;

/**
 * The judged head-to-head matches between model versions: comparisons whose two responses were
 * written by different versions, with each judgment's outcome. "Both bad" says nothing about
 * which version is better and is left out; a tie counts half.
 */
public final class HeadToHead {
    private HeadToHead() {
    }

    /** @param judges include (people and judges), exclude (people only) or only (judges only) */
    public static List<BradleyTerry.Match> matches(String judges) {
        String filter = switch (judges == null ? "include" : judges) {
            case "include" -> "";
            case "exclude" -> " and p.judge is null";
            case "only" -> " and p.judge is not null";
            default -> throw ProblemException.invalid("judges", "judges must be include, exclude or only");
        };
        List<BradleyTerry.Match> matches = new ArrayList<>();
        QuarkusTransaction.requiringNew().run(() -> {
            @SuppressWarnings("unchecked")
            List<Object[]> rows = User.getEntityManager().createNativeQuery("select c.version_a, c.version_b, p.choice from preferences p "
                    + "join comparisons c on c.id = p.comparison_id where c.version_a is not null and c.version_b is not null "
                    + "and c.version_a <> c.version_b" + filter).getResultList();
            for (Object[] r : rows) {
                BradleyTerry.Outcome o = switch ((String) r[2]) {
                    case "A" -> BradleyTerry.Outcome.FIRST_WINS;
                    case "B" -> BradleyTerry.Outcome.SECOND_WINS;
                    case "tie" -> BradleyTerry.Outcome.TIE;
                    default -> null;
                };
                if (o != null) matches.add(new BradleyTerry.Match((String) r[0], (String) r[1], o));
            }
        });
        return matches;
    }
}
