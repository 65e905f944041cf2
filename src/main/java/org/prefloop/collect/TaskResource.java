package org.prefloop.collect;

import io.quarkus.security.identity.SecurityIdentity;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.DefaultValue;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;

import java.time.OffsetDateTime;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/** The signed-in annotator's work: the next comparison, skipping, today's count, their own history. */
@Path("/api/tasks")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed({User.ANNOTATOR, User.ADMIN})
public class TaskResource {

    @Inject
    TaskQueue queue;

    @Inject
    SecurityIdentity identity;

    @Inject
    GoldItems gold;

    @Inject
    Flags flags;

    /**
     * The next comparison (204 when the queue has nothing left for you). {@code pending} lists
     * assignments whose judgment the page still holds back for undo, so they are not handed out again.
     * 403 while the annotator is paused for low gold accuracy.
     */
    @GET
    @Path("/next")
    public Response next(@QueryParam("pending") String pending) {
        gold.pause(me()).ifPresent(reason -> {
            throw new ProblemException(403, null, "You are paused: " + reason + ". An admin can resume you.");
        });
        return queue.next(me(), ids(pending)).map(t -> Response.ok(t).build()).orElseGet(() -> Response.noContent().build());
    }

    @POST
    @Path("/{assignmentId}/skip")
    public Response skip(@PathParam("assignmentId") long assignmentId) {
        queue.skip(assignmentId, me());
        return Response.noContent().build();
    }

    /** Flag the comparison of my assignment as harmful or broken: it leaves every queue until an admin reviews it. */
    @POST
    @Path("/{assignmentId}/flag")
    @jakarta.ws.rs.Consumes(MediaType.APPLICATION_JSON)
    public Response flag(@PathParam("assignmentId") long assignmentId, com.fasterxml.jackson.databind.JsonNode body) {
        flags.flag(assignmentId, body);
        return Response.noContent().build();
    }

    @GET
    @Path("/stats")
    public TaskQueue.Stats stats() {
        return queue.stats(me());
    }

    /** One of my stored judgments; {@code shown} is the verdict as it was on my screen (A = left). */
    public record HistoryItem(long comparisonId, String choice, String shown, String rationale, OffsetDateTime submittedAt,
                              String prompt) {
    }

    @GET
    @Path("/history")
    public List<HistoryItem> history(@QueryParam("limit") @DefaultValue("50") int limit) {
        if (limit < 1 || limit > 500) throw ProblemException.invalid("limit", "limit must be between 1 and 500");
        String me = me();
        List<Preference> mine = Preference.<Preference>find("annotator = ?1 and judge is null order by submittedAt desc", me)
                .page(0, limit).list();
        if (mine.isEmpty()) return List.of();
        Set<Long> ids = mine.stream().map(p -> p.comparisonId).collect(Collectors.toSet());
        Map<Long, Boolean> swapped = Assignment.<Assignment>list("annotator = ?1 and comparisonId in ?2", me, ids).stream()
                .collect(Collectors.toMap(a -> a.comparisonId, a -> a.swapped));
        Map<Long, String> prompts = Comparison.<Comparison>list("id in ?1", ids).stream()
                .collect(Collectors.toMap(c -> c.id, c -> lastUserMessage(c.promptMessages())));
        return mine.stream().map(p -> new HistoryItem(p.comparisonId, p.choice,
                Assignment.shown(p.choice, swapped.getOrDefault(p.comparisonId, false)), p.rationale, p.submittedAt,
                prompts.get(p.comparisonId))).toList();
    }

    private String me() {
        return identity.getPrincipal().getName();
    }

    private static Set<Long> ids(String csv) {
        if (csv == null || csv.isBlank()) return Set.of();
        try {
            return Arrays.stream(csv.split(",")).map(String::trim).filter(s -> !s.isEmpty()).map(Long::parseLong)
                    .collect(Collectors.toSet());
        } catch (NumberFormatException e) {
            throw ProblemException.invalid("pending", "pending must be comma-separated assignment ids");
        }
    }

    private static String lastUserMessage(List<ChatMessage> messages) {
        for (int i = messages.size() - 1; i >= 0; i--) {
            if ("user".equals(messages.get(i).role())) return messages.get(i).content();
        }
        return messages.isEmpty() ? "" : messages.get(messages.size() - 1).content();
    }
}
