package org.prefloop.runs;

import org.prefloop.platform.KafkaClients;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.operators.multi.processors.BroadcastProcessor;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.inject.Inject;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.errors.WakeupException;
import org.jboss.logging.Logger;
import org.prefloop.platform.Roles;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Live training events for the browsers connected to this process (the web role): every web
 * replica reads {@code training-events} in a consumer group of its own, from the latest offset,
 * and hands each event to the server-sent-event streams of that run.
 */
@ApplicationScoped
public class RunEventBroadcast {
    private static final Logger LOG = Logger.getLogger(RunEventBroadcast.class);

    @Inject
    ObjectMapper json;
    @Inject
    Roles roles;

    private final BroadcastProcessor<RunEvent> events = BroadcastProcessor.create();
    private volatile boolean running;
    private volatile KafkaConsumer<String, String> consumer;
    private Thread thread;

    void start(@Observes StartupEvent event) {
        if (!roles.has("web")) return;
        running = true;
        thread = new Thread(this::loop, "prefloop-run-events-live");
        thread.setDaemon(true);
        thread.start();
    }

    /** The live events of one run. */
    public Multi<RunEvent> of(long runId) {
        return events.select().where(e -> e.runId() == runId);
    }

    private void loop() {
        consumer = KafkaClients.consumer("prefloop-live-" + UUID.randomUUID(), "latest", Map.of());
        try (KafkaConsumer<String, String> c = consumer) {
            c.subscribe(List.of(KafkaClients.EVENTS));
            while (running) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    try {
                        events.onNext(json.readValue(r.value(), RunEvent.class));
                    } catch (Exception e) {
                        LOG.debugf("undecodable training event: %s", e.getMessage());
                    }
                }
            }
        } catch (WakeupException e) {
            // shutting down
        }
    }

    void stop(@Observes ShutdownEvent event) {
        running = false;
        if (consumer != null) consumer.wakeup();
    }
}
