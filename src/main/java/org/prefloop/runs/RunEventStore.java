package org.prefloop.runs;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.smallrye.common.annotation.Blocking;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.eclipse.microprofile.reactive.messaging.Incoming;
import org.jboss.logging.Logger;
import org.prefloop.platform.Sql;

import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Stores what {@code training-events} carries (the ingest role): each metric once per run, stage,
 * step and name ({@code ON CONFLICT DO NOTHING}, so a redelivery adds nothing), and the run's
 * progress (stage, step, total steps). A batch of records is one transaction; offsets are
 * committed after it.
 */
@ApplicationScoped
public class RunEventStore {
    private static final Logger LOG = Logger.getLogger(RunEventStore.class);

    @Inject
    Sql sql;
    @Inject
    ObjectMapper json;

    private record Metric(long runId, String stage, int step, String name, double value) {
    }

    @Incoming("training-events-in")
    @Blocking
    public void store(ConsumerRecords<String, String> records) {
        List<Metric> metrics = new ArrayList<>();
        List<RunEvent> progress = new ArrayList<>();
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
                    metrics.add(new Metric(e.runId(), e.stage(), e.step(), m.getKey(), m.getValue()));
                }
            }
            if (e.type().equals(RunEvent.METRICS) || e.type().equals(RunEvent.STAGE)) progress.add(e);
        }
        if (metrics.isEmpty() && progress.isEmpty()) return;
        QuarkusTransaction.requiringNew().run(() -> {
            sql.batch("insert into run_metrics (run_id, stage, step, name, metric_value) values (?, ?, ?, ?, ?) on conflict do nothing",
                    metrics, (ps, m) -> {
                        ps.setLong(1, m.runId());
                        ps.setString(2, m.stage());
                        ps.setInt(3, m.step());
                        ps.setString(4, m.name());
                        ps.setDouble(5, m.value());
                    });
            // in record order: the last event of a batch says where the run is
            sql.batch("update training_runs set stage = ?, step = ?, total_steps = coalesce(?, total_steps) where id = ? and status = 'running'",
                    progress, (ps, e) -> {
                        ps.setString(1, e.stage());
                        ps.setInt(2, e.step());
                        if (e.totalSteps() == null) ps.setNull(3, Types.INTEGER);
                        else ps.setInt(3, e.totalSteps());
                        ps.setLong(4, e.runId());
                    });
        });
    }
}
