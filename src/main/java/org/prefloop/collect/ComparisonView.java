package org.prefloop.collect;

import java.time.OffsetDateTime;
import java.util.List;

/** A stored comparison as the API returns it. */
public record ComparisonView(long id, List<ChatMessage> prompt, List<ComparisonInput.Response> responses, String source,
                             OffsetDateTime createdAt) {
    public static ComparisonView of(Comparison c) {
        return new ComparisonView(c.id, c.promptMessages(),
                List.of(new ComparisonInput.Response(c.responseA, c.modelA, c.versionA),
                        new ComparisonInput.Response(c.responseB, c.modelB, c.versionB)),
                c.source, c.createdAt);
    }
}
