package org.prefloop.platform;

import io.agroal.api.AgroalDataSource;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import jakarta.persistence.EntityManager;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * The house's one way to run the SQL that Hibernate does not express well: one statement over
 * many rows as a JDBC batch ({@link #batch}), and reads of many rows through a cursor
 * ({@link #stream}, {@link #list}). Everything else goes through Hibernate: rows handled as
 * objects are Panache entities, and a one-off statement is a native query on the same
 * EntityManager. docs/ARCHITECTURE.md, "Writing to the database", says when to use which.
 *
 * <p>Why JDBC at all: exactly-once ingest is an {@code INSERT ... ON CONFLICT DO NOTHING} of many
 * rows in one round trip, whose per-row counts say which were new; Hibernate does not batch the
 * inserts of entities with database-generated ids, and a native query is a round trip per row.
 * And exports must stream tables that do not fit in memory, a row at a time from a cursor, where
 * a query's result list would load them whole.
 *
 * <p>Why on Agroal's data source, not on Hibernate's {@code Session.doWork}: inside a JTA
 * transaction Agroal hands out the connection the transaction already holds, the one Hibernate
 * writes through, so a batch commits or rolls back with the entities beside it (and, in a
 * consumer, before its offsets are committed); and a streamed download, written after the
 * resource method returned, has no transaction or session at all and must not be cut by a
 * transaction timeout: a read there takes its own connection in a local transaction, which
 * PostgreSQL needs to stream with a cursor. Writes, on the other hand, run only inside a
 * transaction, as entity writes do: a batch refuses to run without one.
 */
@ApplicationScoped
public class Sql {
    /** Rows sent to the database per round trip of a batch. */
    static final int BATCH_ROWS = 1000;
    /** Rows a cursor fetches per round trip. */
    static final int FETCH_ROWS = 500;

    @Inject
    AgroalDataSource db;

    @Inject
    EntityManager em;

    /** Sets one row's parameters on the batch's statement. */
    @FunctionalInterface
    public interface Binder<T> {
        void bind(PreparedStatement statement, T row) throws SQLException;
    }

    /** Reads the result's current row. */
    @FunctionalInterface
    public interface RowReader<T> {
        T read(ResultSet row) throws SQLException;
    }

    /** Does something with the result's current row (writes it out, adds it up); {@code X}: what writing it out may throw. */
    @FunctionalInterface
    public interface RowHandler<X extends Exception> {
        void accept(ResultSet row) throws SQLException, X;
    }

    /**
     * Runs {@code sql} once per row, as JDBC batches, in the caller's transaction (required).
     * Entities written earlier in the transaction are flushed first, so the batch sees them.
     *
     * @return the rows changed; a driver's "done, count unknown" counts as one (for an
     *         {@code INSERT ... ON CONFLICT DO NOTHING}: the rows that were new)
     */
    public <T> long batch(String sql, Collection<? extends T> rows, Binder<? super T> binder) {
        if (!QuarkusTransaction.isActive()) {
            throw new IllegalStateException("a batch writes in the caller's transaction, and there is none: " + sql);
        }
        if (rows.isEmpty()) return 0;
        em.flush();
        long changed = 0;
        try (Connection c = db.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
            int pending = 0;
            for (T row : rows) {
                binder.bind(ps, row);
                ps.addBatch();
                if (++pending == BATCH_ROWS) {
                    changed += changed(ps.executeBatch());
                    pending = 0;
                }
            }
            if (pending > 0) changed += changed(ps.executeBatch());
        } catch (SQLException e) {
            throw failure(sql, e);
        }
        return changed;
    }

    /**
     * Hands each row of {@code sql} to {@code each} as the cursor reaches it, never holding the
     * whole result: in the caller's transaction if there is one, else in a read-only one of its own.
     *
     * @param args the parameters in order: strings, numbers, booleans, {@link Instant}s, UUIDs
     */
    public <X extends Exception> void stream(String sql, List<?> args, RowHandler<X> each) throws X {
        boolean own = !QuarkusTransaction.isActive();
        try (Connection c = db.getConnection()) {
            // PostgreSQL streams with a cursor only inside a transaction
            if (own) c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                ps.setFetchSize(FETCH_ROWS);
                bind(ps, args);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) each.accept(rs);
                }
            } finally {
                if (own) c.rollback(); // it only read: nothing to keep
            }
        } catch (SQLException e) {
            throw failure(sql, e);
        }
    }

    /** The rows of {@code sql}, each read by {@code reader}, all in memory: for a page, a count, or rows the caller keeps anyway. */
    public <T> List<T> list(String sql, List<?> args, RowReader<T> reader) {
        List<T> out = new ArrayList<>();
        stream(sql, args, rs -> out.add(reader.read(rs)));
        return out;
    }

    private static void bind(PreparedStatement ps, List<?> args) throws SQLException {
        for (int i = 0; i < args.size(); i++) {
            Object a = args.get(i);
            switch (a) {
                case Double d -> ps.setObject(i + 1, d, Types.DOUBLE);
                case Instant t -> ps.setTimestamp(i + 1, Timestamp.from(t));
                case null -> throw new IllegalArgumentException("parameter " + (i + 1) + " is null: write 'is null' into the SQL instead");
                default -> ps.setObject(i + 1, a);
            }
        }
    }

    private static long changed(int[] counts) {
        long n = 0;
        for (int c : counts) n += c == Statement.SUCCESS_NO_INFO ? 1 : Math.max(c, 0);
        return n;
    }

    private static IllegalStateException failure(String sql, SQLException e) {
        return new IllegalStateException("database: " + e.getMessage() + " (in: " + sql + ")", e);
    }
}
