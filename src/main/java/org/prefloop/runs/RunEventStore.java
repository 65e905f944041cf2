package org.prefloop.runs;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.agroal.api.AgroalDataSource;
import io.smallrye.common.annotation.Blocking;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.eclipse.microprofile.reactive.messaging.Incoming;
import org.jboss.logging.Logger;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.Map;

/**
 * Stores what {@code training-events} carries (the ingest role): each metric once per run, stage,
 * step and name ({@code ON CONFLICT DO NOTHING}, so a redelivery adds nothing), and the run's
 * progress (stage, step, total steps). Offsets are committed after the transaction.
 */
@ApplicationScoped
public class RunEventStore {
    private static final Logger LOG = Logger.getLogger(RunEventStore.class);

    @Inject
    AgroalDataSource db;
    @Inject
    ObjectMapper json;

    @Incoming("training-events-in")
    @Blocking
    public void store(ConsumerRecords<String, String> records) throws SQLException {
        try (Connection c = db.getConnection()) {
            c.setAutoCommit(false);
            try (PreparedStatement metric = c.prepareStatement("insert into run_metrics (run_id, stage, step, name, metric_value) values (?, ?, ?, ?, ?) "
                    + "on conflict do nothing");
                 PreparedStatement progress = c.prepareStatement("update training_runs set stage = ?, step = ?, "
                         + "total_steps = coalesce(?, total_steps) where id = ? and status = 'running'")) {
                for (ConsumerRecord<String, String> r : records) {
                    RunEvent e;
                    try {
                        e = json.readValue(r.value(), RunEvent.class);
                    } catch (Exception ex) {
                        LOG.warnf("Skipping an undecodable training event at %s-%d@%d", r.topic(), r.partition(), r.offset());
                        continue;
                    }
                    if (e.stage() == null || e.step() == null) continue;
                    if (e.metrics() != null) {
                        for (Map.Entry<String, Double> m : e.metrics().entrySet()) {
                            if (m.getValue() == null || !Double.isFinite(m.getValue())) continue;
                            metric.setLong(1, e.runId());
                            metric.setString(2, e.stage());
                            metric.setInt(3, e.step());
                            metric.setString(4, m.getKey());
                            metric.setDouble(5, m.getValue());
                            metric.addBatch();
                        }
                    }
                    if (e.type().equals(RunEvent.METRICS) || e.type().equals(RunEvent.STAGE)) {
                        progress.setString(1, e.stage());
                        progress.setInt(2, e.step());
                        if (e.totalSteps() == null) progress.setNull(3, java.sql.Types.INTEGER);
                        else progress.setInt(3, e.totalSteps());
                        progress.setLong(4, e.runId());
                        progress.addBatch();
                    }
                }
                metric.executeBatch();
                progress.executeBatch();
            }
            c.commit();
        }
    }
}
