package org.prefloop.platform;

import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.test.junit.QuarkusTest;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;
import org.prefloop.collect.Comparison;

import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The house's way to batch and stream SQL: a batch writes only in the caller's transaction, on the
 * connection Hibernate writes through, so it commits and rolls back with the entities beside it;
 * its count says which rows of an {@code ON CONFLICT DO NOTHING} were new.
 */
@QuarkusTest
class SqlTest {
    private static final String JUDGE = "insert into preferences (event_id, comparison_id, annotator, choice, submitted_at) "
            + "values (?, ?, ?, 'A', ?) on conflict do nothing";

    @Inject
    Sql sql;

    /** One person's judgment; a person judges a comparison once. */
    private record Judgment(UUID eventId, long comparisonId, String annotator) {
        Judgment(long comparisonId, String annotator) {
            this(UUID.randomUUID(), comparisonId, annotator);
        }
    }

    private long judge(List<Judgment> judgments) {
        return sql.batch(JUDGE, judgments, (ps, j) -> {
            ps.setObject(1, j.eventId());
            ps.setLong(2, j.comparisonId());
            ps.setString(3, j.annotator());
            ps.setTimestamp(4, Timestamp.from(Instant.now()));
        });
    }

    private long judgments(long comparisonId) {
        return sql.list("select count(*) from preferences where comparison_id = ?", List.of(comparisonId), rs -> rs.getLong(1)).get(0);
    }

    private static Comparison comparison(String prompt) {
        Comparison c = new Comparison();
        c.prompt = "[{\"role\":\"user\",\"content\":\"" + prompt + "\"}]";
        c.responseA = "yes";
        c.responseB = "no";
        c.source = "api";
        return c;
    }

    @Test
    void aBatchRefusesToWriteOutsideATransaction() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> judge(List.of(new Judgment(1, "ann"))));
        assertTrue(e.getMessage().contains("transaction"), e.getMessage());
    }

    @Test
    void aBatchRollsBackWithTheEntitiesOfItsTransaction() {
        String prompt = "rolled back " + UUID.randomUUID();
        long[] id = {0};
        assertThrows(IllegalStateException.class, () -> QuarkusTransaction.requiringNew().run(() -> {
            Comparison c = comparison(prompt);
            c.persist();
            id[0] = c.id;
            // the judgment's foreign key finds the comparison not yet committed: one connection, one transaction
            assertEquals(1, judge(List.of(new Judgment(c.id, "ann"))));
            assertEquals(1, judgments(c.id), "a read in the transaction sees its batch");
            throw new IllegalStateException("roll back");
        }));
        assertTrue(id[0] > 0);
        assertEquals(0, judgments(id[0]), "the batch was rolled back");
        assertEquals(0, sql.list("select count(*) from comparisons where prompt like ?", List.of("%" + prompt + "%"),
                rs -> rs.getLong(1)).get(0), "the entity was rolled back with it");
    }

    @Test
    void aCommittedBatchCountsOnlyTheRowsThatWereNew() {
        long id = QuarkusTransaction.requiringNew().call(() -> {
            Comparison c = comparison("committed " + UUID.randomUUID());
            c.persist();
            return c.id;
        });
        Judgment first = new Judgment(id, "ann");
        assertEquals(1, QuarkusTransaction.requiringNew().call(() -> judge(List.of(first))));
        // a redelivery of the first beside a new one: only the new one is stored
        assertEquals(1, QuarkusTransaction.requiringNew().call(() -> judge(List.of(first, new Judgment(id, "bob")))));
        assertEquals(2, judgments(id));
    }

    @Test
    void aBatchLargerThanOneRoundTripAndAStreamOverItKeepEveryRowInOrder() {
        long id = QuarkusTransaction.requiringNew().call(() -> {
            Comparison c = comparison("many " + UUID.randomUUID());
            c.persist();
            return c.id;
        });
        List<Judgment> many = IntStream.range(0, 2 * Sql.BATCH_ROWS + 7).mapToObj(i -> new Judgment(id, "person-" + i)).toList();
        assertEquals(many.size(), QuarkusTransaction.requiringNew().call(() -> judge(many)));
        List<String> streamed = new ArrayList<>();
        sql.stream("select event_id from preferences where comparison_id = ? order by id", List.of(id), rs -> streamed.add(rs.getString(1)));
        assertEquals(many.stream().map(j -> j.eventId().toString()).toList(), streamed);
    }
}
