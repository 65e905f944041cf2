package org.prefloop.console;

import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.identity.User;
import org.prefloop.ingest.ConsumerLag;
import org.prefloop.platform.Settings;

import java.time.Instant;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The console's first page in numbers: judgments per hour and per annotator, the queue, Kafka lag. */
@Path("/api/overview")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class OverviewResource {

    @Inject
    EntityManager em;

    @Inject
    ConsumerLag lag;

    @Inject
    Settings settings;

    /** Judgments submitted in one hour, by people and by programmatic judges. */
    public record Hour(Instant start, long humans, long judges) {
    }

    public record Annotator(String annotator, long total, long today) {
    }

    /**
     * comparisons: all; waiting: still short of their overlap; openSlots: assignments still to hand
     * out; openAssignments: handed out and not yet answered or skipped.
     */
    public record Queue(long comparisons, long waiting, long openSlots, long openAssignments, int overlap) {
    }

    /** {@code consumerLag} is -1 when Kafka could not be asked. */
    public record Overview(long judgments, List<Hour> perHour, List<Annotator> perAnnotator, Queue queue, long consumerLag) {
    }

    @GET
    public Overview overview() {
        Instant now = Instant.now();
        long firstHour = now.truncatedTo(ChronoUnit.HOURS).minus(23, ChronoUnit.HOURS).getEpochSecond() / 3600;
        Map<Long, long[]> byHour = new HashMap<>();
        for (Object[] r : rows("select floor(extract(epoch from submitted_at) / 3600), sum(case when judge is null then 1 else 0 end), "
                + "sum(case when judge is null then 0 else 1 end) from preferences where submitted_at >= ?1 group by 1",
                OffsetDateTime.ofInstant(Instant.ofEpochSecond(firstHour * 3600), ZoneOffset.UTC))) {
            byHour.put(((Number) r[0]).longValue(), new long[]{((Number) r[1]).longValue(), ((Number) r[2]).longValue()});
        }
        List<Hour> hours = new ArrayList<>();
        for (long h = firstHour; h < firstHour + 24; h++) {
            long[] c = byHour.getOrDefault(h, new long[2]);
            hours.add(new Hour(Instant.ofEpochSecond(h * 3600), c[0], c[1]));
        }
        OffsetDateTime midnight = LocalDate.now().atStartOfDay(ZoneId.systemDefault()).toOffsetDateTime();
        List<Annotator> annotators = rows("select annotator, count(*), sum(case when submitted_at >= ?1 then 1 else 0 end) "
                + "from preferences where judge is null group by annotator order by 2 desc", midnight).stream()
                .map(r -> new Annotator((String) r[0], ((Number) r[1]).longValue(), ((Number) r[2]).longValue())).toList();
        Object[] q = rows("select count(*), sum(case when assigned < ?1 then 1 else 0 end), "
                + "sum(case when assigned < ?1 then ?1 - assigned else 0 end) from comparisons", settings.annotation().overlap()).get(0);
        long open = ((Number) em.createNativeQuery("select count(*) from assignments where answered_at is null and skipped_at is null")
                .getSingleResult()).longValue();
        long judgments = ((Number) em.createNativeQuery("select count(*) from preferences").getSingleResult()).longValue();
        return new Overview(judgments, hours, annotators, new Queue(num(q[0]), num(q[1]), num(q[2]), open, settings.annotation().overlap()), lag.lag());
    }

    @SuppressWarnings("unchecked")
    private List<Object[]> rows(String sql, Object parameter) {
        return em.createNativeQuery(sql).setParameter(1, parameter).getResultList();
    }

    private static long num(Object o) {
        return o == null ? 0 : ((Number) o).longValue();
    }
}
