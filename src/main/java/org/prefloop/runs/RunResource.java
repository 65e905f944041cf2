package org.prefloop.runs;

import org.prefloop.platform.Settings;
import org.prefloop.registry.ModelVersion;
import org.prefloop.platform.KafkaClients;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import io.quarkus.narayana.jta.QuarkusTransaction;
import io.quarkus.panache.common.Sort;
import io.quarkus.security.identity.SecurityIdentity;
import io.smallrye.mutiny.Multi;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import org.jboss.resteasy.reactive.RestStreamElementType;
import org.prefloop.identity.User;
import org.prefloop.platform.Problem;
import org.prefloop.platform.ProblemException;
import org.prefloop.train.Preflight;
import org.prefloop.train.PreflightReport;
import org.prefloop.train.RunSpec;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Training runs: submit a run spec (JSON or YAML, TRL's names; {@code model_name_or_path} may be
 * {@code version:ID} and defaults to the promoted version; datasets may be {@code dataset:ID}),
 * get the pre-flight report back and the job queued on {@code training-jobs}; follow its status
 * and metric series, stream its events, cancel it.
 */
@Path("/api/runs")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class RunResource {
    private static final ObjectMapper YAML = new YAMLMapper();

    @Inject
    ObjectMapper json;
    @Inject
    RunPreparation preparation;
    @Inject
    KafkaClients kafka;
    @Inject
    RunEventBroadcast live;
    @Inject
    SecurityIdentity identity;
    @Inject
    org.prefloop.platform.AuditLog audit;
    @Inject
    Settings settings;

    public record RunView(long id, String name, String status, OffsetDateTime createdAt, OffsetDateTime startedAt,
                          OffsetDateTime finishedAt, String stage, Integer step, Integer totalSteps, int attempts, String worker,
                          boolean cancelRequested, String error, Long parentVersionId, Long modelVersionId, JsonNode spec,
                          JsonNode preflight, JsonNode summary, List<Metric> metrics) {
    }

    public record Metric(String stage, int step, String name, double value) {
    }

    @POST
    @Consumes({MediaType.APPLICATION_JSON, "application/yaml", "application/x-yaml", MediaType.TEXT_PLAIN})
    public Response submit(String body) throws IOException {
        if (body == null || body.isBlank()) throw ProblemException.badRequest(null, "the body must be a run spec (JSON or YAML)");
        JsonNode tree;
        try {
            tree = YAML.readTree(body);
        } catch (IOException e) {
            throw ProblemException.badRequest(null, "the body is neither JSON nor YAML: " + e.getMessage().lines().findFirst().orElse(""));
        }
        if (!(tree instanceof ObjectNode spec)) throw ProblemException.badRequest(null, "the run spec must be an object");
        if (!spec.hasNonNull("model_name_or_path")) {
            ModelVersion promoted = ModelVersion.promoted().orElseThrow(() -> ProblemException.conflict("model_name_or_path",
                    "no model_name_or_path given and no version is promoted to start from"));
            spec.put("model_name_or_path", RunPreparation.VERSION + promoted.id);
        }
        String specJson = json.writeValueAsString(spec);
        RunSpec parsed;
        try {
            parsed = RunSpec.of(spec);
        } catch (IllegalArgumentException e) {
            throw ProblemException.invalid(null, e.getMessage());
        }
        checkName(parsed.name());
        Checked report = preflight(parsed);
        if (!report.ok()) {
            Map<String, Object> problem = new LinkedHashMap<>();
            problem.put("type", "about:blank");
            problem.put("title", "Unprocessable Content");
            problem.put("status", 422);
            problem.put("detail", "pre-flight checks failed; the run was not queued");
            problem.put("preflight", json.readTree(report.json()));
            return Response.status(422).type(Problem.MEDIA_TYPE).entity(problem).build();
        }
        String user = identity.getPrincipal().getName();
        String reportJson = report.json();
        long id = QuarkusTransaction.requiringNew().call(() -> {
            TrainingRun run = new TrainingRun();
            run.name = parsed.name();
            run.status = TrainingRun.QUEUED;
            run.spec = specJson;
            run.preflight = reportJson;
            run.createdBy = user;
            run.persist();
            audit.record("run.submit", "run " + run.id, parsed.name());
            return run.id;
        });
        // the run as queued: once the job is sent, a worker (in this process, too) may claim it before we answer
        RunView queued = view(find(id), false);
        try {
            kafka.send(KafkaClients.JOBS, String.valueOf(id), String.valueOf(id));
        } catch (IllegalStateException e) {
            QuarkusTransaction.requiringNew().run(() -> TrainingRun.deleteById(id));
            throw new ProblemException(503, null, "the job could not be queued: " + e.getMessage());
        }
        return Response.created(URI.create("/api/runs/" + id)).entity(queued).build();
    }

    /**
     * The pre-flight report on the spec as the worker will see it (its datasets exported into a scratch directory).
     * Messages name files as the client wrote them, never by their paths on this server.
     */
    private record Checked(boolean ok, String json) {
    }

    private Checked preflight(RunSpec spec) throws IOException {
        java.nio.file.Path scratch = Files.createDirectories(java.nio.file.Path.of(settings.runsDir())).resolve(".preflight-" + java.util.UUID.randomUUID());
        RunPreparation.Prepared p = null;
        try {
            p = preparation.prepare(spec, scratch, true);
            java.nio.file.Path model = java.nio.file.Path.of(p.spec().modelNameOrPath());
            if (!Files.isRegularFile(model.resolve("config.json")) && spec.modelNameOrPath().startsWith(RunPreparation.VERSION)) {
                // a registered version whose files live on the model store, which this process does not mount
                return checked(PreflightReport.deferred("the model store is not mounted here; the worker runs the checks before training"), p, scratch);
            }
            return checked(Preflight.check(p.spec().withDefaultExecutor(settings.executor()), p.dir()), p, scratch);
        } catch (IllegalArgumentException | java.io.UncheckedIOException e) {
            String message = p == null ? e.getMessage() : p.redact(e.getMessage());
            throw ProblemException.invalid(null, message == null ? "the run spec cannot be prepared" : message.replace(scratch.toString(), "<run>"));
        } finally {
            deleteTree(scratch);
        }
    }

    private Checked checked(PreflightReport report, RunPreparation.Prepared p, java.nio.file.Path scratch) throws IOException {
        return new Checked(report.ok(), p.redact(json.writeValueAsString(report.toMap())).replace(scratch.toString(), "<run>"));
    }

    /** Run names become directory names and /v1 model ids: letters, digits, '.', '_' and '-', starting with a letter or digit. */
    static void checkName(String name) {
        if (name == null || !name.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,99}") || name.contains("..")) {
            throw ProblemException.invalid("name", "name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'");
        }
    }

    @GET
    public List<RunView> list() {
        return QuarkusTransaction.requiringNew().call(() ->
                TrainingRun.<TrainingRun>listAll(Sort.descending("id")).stream().map(r -> view(r, false)).toList());
    }

    @GET
    @Path("/{id}")
    public RunView get(@PathParam("id") long id) {
        return view(find(id), true);
    }

    @POST
    @Path("/{id}/cancel")
    public RunView cancel(@PathParam("id") long id) {
        QuarkusTransaction.requiringNew().run(() -> {
            TrainingRun r = TrainingRun.findById(id);
            if (r == null) throw ProblemException.notFound("id", "run " + id + " does not exist");
            if (r.finished()) throw ProblemException.conflict("id", "run " + id + " already " + r.status);
            r.cancelRequested = true;
            if (r.status.equals(TrainingRun.QUEUED)) {
                r.status = TrainingRun.CANCELLED;
                r.finishedAt = OffsetDateTime.now();
            }
        });
        audit.record("run.cancel", "run " + id, null);
        return view(find(id), false);
    }

    /** The run's stored metrics, then its live events, until it finishes. */
    @GET
    @Path("/{id}/events")
    @io.smallrye.common.annotation.Blocking
    @Produces(MediaType.SERVER_SENT_EVENTS)
    @RestStreamElementType(MediaType.APPLICATION_JSON)
    public Multi<RunEvent> events(@PathParam("id") long id) {
        TrainingRun run = find(id);
        Multi<RunEvent> liveEvents = live.of(id);
        List<RunEvent> stored = new ArrayList<>();
        Map<String, Map<String, Double>> byStep = new LinkedHashMap<>();
        for (Metric m : metrics(id)) byStep.computeIfAbsent(m.stage() + "/" + m.step(), k -> new LinkedHashMap<>()).put(m.name(), m.value());
        byStep.forEach((k, m) -> {
            String[] parts = k.split("/");
            stored.add(new RunEvent(id, RunEvent.METRICS, parts[0], Integer.parseInt(parts[1]), null, m, null, null));
        });
        stored.add(RunEvent.status(id, run.status, run.error));
        Multi<RunEvent> history = Multi.createFrom().iterable(stored);
        if (run.finished()) return history;
        // the store is polled too, so that a run finishing between the history and the live subscription still ends the stream
        Multi<RunEvent> polled = Multi.createFrom().ticks().every(java.time.Duration.ofSeconds(3)).onOverflow().drop()
                .emitOn(io.smallrye.mutiny.infrastructure.Infrastructure.getDefaultWorkerPool())
                .map(t -> find(id)).filter(TrainingRun::finished).map(r -> RunEvent.status(id, r.status, r.error));
        Multi<RunEvent> untilDone = Multi.createFrom().emitter(em -> {
            var subscription = Multi.createBy().merging().streams(liveEvents, polled).subscribe().with(e -> {
                em.emit(e);
                if (isFinal(e)) em.complete();
            }, em::fail, em::complete);
            em.onTermination(subscription::cancel);
        });
        return Multi.createBy().concatenating().streams(history, untilDone);
    }

    private static boolean isFinal(RunEvent e) {
        return RunEvent.STATUS.equals(e.type()) && (TrainingRun.SUCCEEDED.equals(e.status()) || TrainingRun.FAILED.equals(e.status())
                || TrainingRun.CANCELLED.equals(e.status()));
    }

    private List<Metric> metrics(long id) {
        return QuarkusTransaction.requiringNew().call(() -> TrainingRun.getEntityManager()
                .createNativeQuery("select stage, step, name, metric_value from run_metrics where run_id = ?1 order by stage desc, step, name")
                .setParameter(1, id).getResultList().stream()
                .map(o -> {
                    Object[] row = (Object[]) o;
                    return new Metric((String) row[0], ((Number) row[1]).intValue(), (String) row[2], ((Number) row[3]).doubleValue());
                }).toList());
    }

    private static TrainingRun find(long id) {
        TrainingRun r = QuarkusTransaction.requiringNew().call(() -> TrainingRun.<TrainingRun>findById(id));
        if (r == null) throw ProblemException.notFound("id", "run " + id + " does not exist");
        return r;
    }

    private RunView view(TrainingRun r, boolean withMetrics) {
        return new RunView(r.id, r.name, r.status, r.createdAt, r.startedAt, r.finishedAt, r.stage, r.step, r.totalSteps, r.attempts,
                r.worker, r.cancelRequested, r.error, r.parentVersionId, r.modelVersionId, tree(r.spec), tree(r.preflight), tree(r.summary),
                withMetrics ? metrics(r.id) : null);
    }

    private JsonNode tree(String text) {
        try {
            return text == null ? null : json.readTree(text);
        } catch (IOException e) {
            return json.getNodeFactory().textNode(text);
        }
    }

    private static void deleteTree(java.nio.file.Path dir) {
        if (!Files.exists(dir)) return;
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // scratch space; a leftover is harmless
        }
    }
}
