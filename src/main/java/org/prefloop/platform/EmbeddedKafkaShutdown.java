package org.prefloop.platform;

import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.context.Destroyed;
import jakarta.enterprise.event.Observes;
import jakarta.interceptor.Interceptor;

/**
 * Stops the in-process broker when the application stops, after the messaging connector has
 * closed its producers and consumers (a late priority), so that they can flush and commit.
 */
@ApplicationScoped
public class EmbeddedKafkaShutdown {

    void onStop(@Observes @Priority(Interceptor.Priority.LIBRARY_AFTER + 1000) @Destroyed(ApplicationScoped.class) Object ignored) {
        stopLast();
    }

    static synchronized void stopLast() {
        EmbeddedKafka broker = KafkaConfigSourceFactory.broker();
        if (broker != null) {
            KafkaConfigSourceFactory.forget();
            broker.stop();
        }
    }
}
