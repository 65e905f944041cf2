package org.prefloop.dataset;

import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.DefaultValue;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import jakarta.ws.rs.core.StreamingOutput;
import org.prefloop.collect.ChatMessage;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Sql;

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Stored judgments as training data in TRL's formats, streamed row by row from a database
 * cursor. {@code format=dpo}: one {"prompt", "chosen", "rejected"} line per decisive judgment
 * (conversational: the prompt is the message list, chosen and rejected are assistant turns);
 * ties and both-bad verdicts make no pair and are counted in the summary. {@code format=sft}:
 * one {"messages"} line per decisive judgment, the prompt followed by the chosen response.
 */
@Path("/api/export/preferences")
@RolesAllowed(User.ADMIN)
public class PreferenceExport {
    private static final String ROWS = "select c.prompt, c.response_a, c.response_b, p.choice from preferences p "
            + "join comparisons c on c.id = p.comparison_id where p.choice in ('A', 'B') and not "
            + org.prefloop.collect.GoldItems.IS_GOLD.formatted("p.comparison_id") + " order by p.id";

    @Inject
    Sql sql;

    @Inject
    ObjectMapper json;

    /** How the stored judgments split: pairs that export, and verdicts that make no pair. */
    public record Summary(long judgments, long pairs, long ties, long bothBad) {
    }

    /** TRL's conversational preference line. */
    public record DpoLine(List<ChatMessage> prompt, List<ChatMessage> chosen, List<ChatMessage> rejected) {
    }

    /** TRL's conversational SFT line. */
    public record SftLine(List<ChatMessage> messages) {
    }

    private record ChoiceCount(String choice, long count) {
    }

    @GET
    @Path("/summary")
    @Produces(MediaType.APPLICATION_JSON)
    public Summary summary() {
        long pairs = 0, ties = 0, bothBad = 0;
        for (ChoiceCount c : sql.list("select choice, count(*) from preferences p where not "
                + org.prefloop.collect.GoldItems.IS_GOLD.formatted("p.comparison_id") + " group by choice", List.of(),
                rs -> new ChoiceCount(rs.getString(1), rs.getLong(2)))) {
            switch (c.choice()) {
                case "A", "B" -> pairs += c.count();
                case "tie" -> ties = c.count();
                case "both_bad" -> bothBad = c.count();
                default -> { }
            }
        }
        return new Summary(pairs + ties + bothBad, pairs, ties, bothBad);
    }

    @GET
    @Produces("application/x-ndjson")
    public Response export(@QueryParam("format") @DefaultValue("dpo") String format) {
        if (!format.equals("dpo") && !format.equals("sft")) {
            throw ProblemException.badRequest("format", "format must be 'dpo' or 'sft'; got '" + format + "'");
        }
        Summary summary = summary();
        StreamingOutput body = out -> {
            BufferedWriter w = new BufferedWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8));
            sql.stream(ROWS, List.of(), rs -> {
                w.write(line(format, rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4)));
                w.write('\n');
            });
            w.flush();
        };
        return Response.ok(body)
                .header("X-PrefLoop-Pairs", summary.pairs())
                .header("X-PrefLoop-Excluded-Ties", summary.ties())
                .header("X-PrefLoop-Excluded-Both-Bad", summary.bothBad())
                .build();
    }

    private String line(String format, String promptJson, String a, String b, String choice) {
        try {
            List<ChatMessage> prompt = List.of(json.readValue(promptJson, ChatMessage[].class));
            String chosen = choice.equals("A") ? a : b;
            String rejected = choice.equals("A") ? b : a;
            if (format.equals("sft")) {
                List<ChatMessage> messages = new ArrayList<>(prompt);
                messages.add(new ChatMessage("assistant", chosen));
                return json.writeValueAsString(new SftLine(messages));
            }
            return json.writeValueAsString(new DpoLine(prompt,
                    List.of(new ChatMessage("assistant", chosen)), List.of(new ChatMessage("assistant", rejected))));
        } catch (java.io.IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
