package org.prefloop.eval;

import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.annotation.security.RolesAllowed;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;

import java.util.ArrayList;
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

    public record WinRate(String version, String opponent, double winRate, int matches) {
    }

    public record RatingsView(List<BradleyTerry.Rating> ratings, List<WinRate> winRates, int matches) {
    }

    @GET
    public RatingsView ratings(@QueryParam("judges") String judges) {
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
        TreeSet<String> versions = new TreeSet<>();
        matches.forEach(m -> {
            versions.add(m.first());
            versions.add(m.second());
        });
        List<WinRate> rates = new ArrayList<>();
        for (String v : versions) {
            for (String o : versions) {
                if (v.equals(o)) continue;
                int n = (int) matches.stream().filter(m -> (m.first().equals(v) && m.second().equals(o)) || (m.first().equals(o) && m.second().equals(v))).count();
                if (n > 0) rates.add(new WinRate(v, o, BradleyTerry.winRate(matches, v, o), n));
            }
        }
        return new RatingsView(matches.isEmpty() ? List.of() : BradleyTerry.fit(matches), rates, matches.size());
    }
}
