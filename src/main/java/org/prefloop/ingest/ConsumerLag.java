package org.prefloop.ingest;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.Startup;
import io.smallrye.common.annotation.Identifier;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.apache.kafka.clients.admin.AdminClient;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.prefloop.collect.PreferenceEvent;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * How many judgments Kafka holds that the ingest group has not yet committed: the end offset
 * of each partition of {@code preferences} minus the group's committed offset.
 */
@Startup
@ApplicationScoped
public class ConsumerLag {
    public static final String GROUP = "prefloop-ingest";

    private final AdminClient admin;

    @Inject
    ConsumerLag(@Identifier("default-kafka-broker") Map<String, Object> kafkaConfig, MeterRegistry registry) {
        Map<String, Object> config = new HashMap<>();
        config.put("bootstrap.servers", kafkaConfig.get("bootstrap.servers"));
        config.put("request.timeout.ms", 5000);
        config.put("default.api.timeout.ms", 5000);
        this.admin = AdminClient.create(config);
        Gauge.builder("prefloop.ingest.consumer.lag", this, ConsumerLag::lagOrNaN)
                .description("judgments in Kafka not yet committed by the ingest consumer group").register(registry);
    }

    /** The current lag; -1 when Kafka cannot be asked. */
    public long lag() {
        try {
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(GROUP)
                    .partitionsToOffsetAndMetadata().get(5, TimeUnit.SECONDS);
            var partitions = admin.describeTopics(java.util.List.of(PreferenceEvent.TOPIC)).allTopicNames().get(5, TimeUnit.SECONDS)
                    .get(PreferenceEvent.TOPIC).partitions().stream()
                    .map(p -> new TopicPartition(PreferenceEvent.TOPIC, p.partition())).toList();
            Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> ends = admin.listOffsets(
                    partitions.stream().collect(Collectors.toMap(p -> p, p -> OffsetSpec.latest()))).all().get(5, TimeUnit.SECONDS);
            long lag = 0;
            for (TopicPartition p : partitions) {
                OffsetAndMetadata c = committed.get(p);
                lag += ends.get(p).offset() - (c == null ? 0 : c.offset());
            }
            return lag;
        } catch (Exception e) {
            return -1;
        }
    }

    private double lagOrNaN() {
        long lag = lag();
        return lag < 0 ? Double.NaN : lag;
    }

    @PreDestroy
    void close() {
        admin.close(java.time.Duration.ofSeconds(2));
    }
}
