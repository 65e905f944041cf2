package org.prefloop.collect;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Sql;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Bulk import of comparisons from JSON Lines. The body is read line by line and written in
 * batches of {@value #BATCH} rows, each batch in its own transaction, so memory stays flat
 * whatever the size; bad lines are reported by number and skipped, good lines are kept.
 */
@ApplicationScoped
public class ComparisonImport {
    static final int BATCH = 1000;
    static final int MAX_REPORTED_ERRORS = 1000;

    @Inject
    ObjectMapper json;

    @Inject
    Sql sql;

    public record LineError(long line, String field, String problem) {
    }

    public record Report(long imported, long failed, List<LineError> errors, boolean errorsTruncated) {
    }

    Report run(InputStream body) {
        List<ComparisonInput> batch = new ArrayList<>(BATCH);
        List<LineError> errors = new ArrayList<>();
        long imported = 0;
        long failed = 0;
        long lineNo = 0;
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                lineNo++;
                if (line.isBlank()) continue;
                try {
                    batch.add(json.readValue(line, ComparisonInput.class).validated());
                } catch (ProblemException e) {
                    failed++;
                    if (errors.size() < MAX_REPORTED_ERRORS) errors.add(new LineError(lineNo, e.field(), e.getMessage()));
                } catch (IOException e) {
                    failed++;
                    if (errors.size() < MAX_REPORTED_ERRORS) errors.add(new LineError(lineNo, null, "malformed JSON: " + e.getMessage().split("\n")[0]));
                }
                if (batch.size() == BATCH) {
                    imported += insert(batch);
                    batch.clear();
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        imported += insert(batch);
        if (imported == 0 && failed > 0) {
            throw ProblemException.invalid(null, "no line could be imported; first problem, line " + errors.get(0).line() + ": " + errors.get(0).problem());
        }
        return new Report(imported, failed, errors, failed > errors.size());
    }

    private int insert(List<ComparisonInput> rows) {
        if (rows.isEmpty()) return 0;
        QuarkusTransaction.requiringNew().run(() -> sql.batch("insert into comparisons (prompt, response_a, model_a, version_a, "
                + "response_b, model_b, version_b, source) values (?,?,?,?,?,?,?,?)", rows, (ps, in) -> {
            Comparison c = in.toEntity();
            ps.setString(1, c.prompt);
            ps.setString(2, c.responseA);
            ps.setString(3, c.modelA);
            ps.setString(4, c.versionA);
            ps.setString(5, c.responseB);
            ps.setString(6, c.modelB);
            ps.setString(7, c.versionB);
            ps.setString(8, in.source() == null ? "import" : c.source);
        }));
        return rows.size();
    }
}
