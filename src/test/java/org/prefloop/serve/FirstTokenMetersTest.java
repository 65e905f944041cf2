package org.prefloop.serve;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.prefloop.model.DecodeBatch;

/** A request's time to first token splits into phases that add up to it, each in its own meter. */
class FirstTokenMetersTest {
    static final long MS = 1_000_000;

    @Test
    void thePhasesOfOneRequestAddUpToItsTimeToFirstToken() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        FirstTokenMeters meters = new FirstTokenMeters(registry);
        // offered at 0, the step running then ended at 40, taken at 45, admitted at 47, pass from 50 to 90, first token at 93
        meters.record(0, 40 * MS, 45 * MS, new DecodeBatch.Prefilled(47 * MS, 50 * MS, 90 * MS, 3, 48, 1), 93 * MS, true);
        meters.step(120 * MS);
        assertEquals(93, ms(registry, "prefloop.serve.first_token"));
        assertEquals(40, ms(registry, "prefloop.serve.queue.in_progress"));
        assertEquals(5, ms(registry, "prefloop.serve.queue.after"));
        assertEquals(5, ms(registry, "prefloop.serve.prefill.wait"));
        assertEquals(40, ms(registry, "prefloop.serve.prefill"));
        assertEquals(3, ms(registry, "prefloop.serve.first_token.emit"));
        assertEquals(120, ms(registry, "prefloop.serve.step"));
        assertEquals(3, registry.get("prefloop.serve.prefill.rows").summary().totalAmount());
        assertEquals(48, registry.get("prefloop.serve.prefill.tokens").summary().totalAmount());
        assertEquals(1, registry.get("prefloop.serve.first_token.empty").counter().count());
        double phases = ms(registry, "prefloop.serve.queue.in_progress") + ms(registry, "prefloop.serve.queue.after")
                + ms(registry, "prefloop.serve.prefill.wait") + ms(registry, "prefloop.serve.prefill") + ms(registry, "prefloop.serve.first_token.emit");
        assertEquals(ms(registry, "prefloop.serve.first_token"), phases, "the phases cover the whole time, with no gap and no overlap");
    }

    static double ms(SimpleMeterRegistry registry, String timer) {
        return registry.get(timer).timer().totalTime(TimeUnit.MILLISECONDS);
    }
}
