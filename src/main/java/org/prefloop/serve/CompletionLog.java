package org.prefloop.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.agroal.api.AgroalDataSource;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;

/**
 * What /v1 answered, by completion id: the prompt, the answer and the version that wrote it, so
 * that an app's later feedback on that id ({@link FeedbackResource}) becomes a thumbs example.
 * Written before the answer is sent, off the batch scheduler's thread.
 */
@ApplicationScoped
public class CompletionLog {
    private static final Logger LOG = Logger.getLogger(CompletionLog.class);

    @Inject
    AgroalDataSource db;

    @Inject
    ObjectMapper json;

    public record Entry(String id, String model, String prompt, String completion) {
    }

    /** Remembers one answer; a failure is logged, never fails the answer (its feedback will then be refused as unknown). */
    public void remember(String id, String model, List<ChatCompletionRequest.Message> messages, String completion) {
        try (Connection c = db.getConnection();
             PreparedStatement ps = c.prepareStatement("insert into completion_log (id, model_name, prompt, completion) values (?,?,?,?)")) {
            ps.setString(1, id);
            ps.setString(2, model);
            ps.setString(3, json.writeValueAsString(messages));
            ps.setString(4, completion);
            ps.executeUpdate();
        } catch (SQLException | JsonProcessingException e) {
            LOG.warnf("could not remember completion %s: %s", id, e.getMessage());
        }
    }

    public Optional<Entry> find(String id) {
        try (Connection c = db.getConnection();
             PreparedStatement ps = c.prepareStatement("select id, model_name, prompt, completion from completion_log where id = ?")) {
            ps.setString(1, id);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new Entry(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4))) : Optional.empty();
            }
        } catch (SQLException e) {
            throw new IllegalStateException("cannot read the completion log: " + e.getMessage(), e);
        }
    }
}
