package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import io.quarkus.narayana.jta.QuarkusTransaction;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.prefloop.collect.GoldItems;
import org.prefloop.collect.Strength;
import org.prefloop.eval.Agreement;
import org.prefloop.eval.JudgeAgreement;
import org.prefloop.platform.Sql;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Freezes stored judgments into an immutable dataset version. Per comparison the raw votes are
 * kept, the consensus is the majority verdict and its agreement the share of votes behind it;
 * a comparison whose consensus is A or B becomes a (chosen, rejected) pair, or for SFT a
 * conversation ending in the chosen response. The version's hash is the SHA-256 of its
 * export, so equal content means an equal hash.
 */
@ApplicationScoped
public class DatasetFreezer {
    @Inject
    Sql sql;

    @Inject
    ObjectMapper json;

    /** Counts of what the freeze considered and why comparisons were left out. */
    public record Summary(int comparisons, int judgments, int items, int noMajority, int tieOrBothBad,
                          int tooFewVotes, int belowAgreement, int noPositiveMargin) {
        public Summary(int comparisons, int judgments, int items, int noMajority, int tieOrBothBad, int tooFewVotes, int belowAgreement) {
            this(comparisons, judgments, items, noMajority, tieOrBothBad, tooFewVotes, belowAgreement, 0);
        }
    }

    record Frozen(List<DatasetItem> items, Summary summary) {
    }

    Frozen select(String kind, DatasetFilters f) {
        if (kind.equals(Dataset.KTO)) return thumbs(f);
        Map<Long, List<Vote>> byComparison = new LinkedHashMap<>();
        Map<Long, String[]> comparisons = new LinkedHashMap<>();
        StringBuilder query = new StringBuilder("select p.comparison_id, p.event_id, p.annotator, p.choice, p.judge, "
                + "c.prompt, c.response_a, c.response_b, p.strength, p.criteria from preferences p join comparisons c on c.id = p.comparison_id "
                + "where not " + GoldItems.IS_GOLD.formatted("p.comparison_id"));  // gold items test people, they train nothing
        List<Object> args = new ArrayList<>();
        if (f.from() != null) {
            query.append(" and p.submitted_at >= ?");
            args.add(f.from());
        }
        if (f.to() != null) {
            query.append(" and p.submitted_at < ?");
            args.add(f.to());
        }
        if (!f.judgesIncluded()) query.append(" and p.judge is null");
        if (f.annotators() != null && !f.annotators().isEmpty()) {
            query.append(" and p.annotator in (").append("?,".repeat(f.annotators().size() - 1)).append("?)");
            args.addAll(f.annotators());
        }
        query.append(" order by p.comparison_id, p.id");
        Set<String> untrusted = f.judgesIncluded() && f.judgeMinAgreement() != null ? judgesBelow(f.judgeMinAgreement()) : Set.of();
        Map<Long, String> adjudications = f.adjudicationsPreferred() ? adjudications() : Map.of();
        sql.stream(query.toString(), args, rs -> {
            if (rs.getString(5) != null && untrusted.contains(rs.getString(5))) return;
            String choice = f.criterion() == null ? rs.getString(4) : criterionVerdict(rs.getString(10), f.criterion());
            if (choice == null) return; // a dataset of one criterion counts only the votes on it
            long id = rs.getLong(1);
            byComparison.computeIfAbsent(id, k -> new ArrayList<>()).add(new Vote(rs.getString(2), rs.getString(3), choice,
                    rs.getString(5), f.criterion() == null ? rs.getString(9) : null, rs.getString(10)));
            comparisons.putIfAbsent(id, new String[]{rs.getString(6), rs.getString(7), rs.getString(8)});
        });
        int judgments = byComparison.values().stream().mapToInt(List::size).sum();
        List<DatasetItem> items = new ArrayList<>();
        int noMajority = 0, tieOrBad = 0, tooFew = 0, lowAgreement = 0, noMargin = 0;
        // TRL reads a margin only if every example has one: all pairs get it once any vote says how much better
        boolean graded = byComparison.values().stream().flatMap(List::stream).anyMatch(v -> v.strength() != null);
        for (Map.Entry<Long, List<Vote>> e : byComparison.entrySet()) {
            List<Vote> votes = e.getValue();
            List<Agreement.Label> labels = votes.stream()
                    .map(v -> new Agreement.Label(String.valueOf(e.getKey()), v.annotator() + "#" + v.eventId(), v.choice())).toList();
            Agreement.Consensus consensus = Agreement.consensus(labels).get(String.valueOf(e.getKey()));
            String adjudicated = adjudications.get(e.getKey());
            // an admin's adjudication settles a split: its verdict is the label, as if every vote had agreed
            if (adjudicated != null) consensus = new Agreement.Consensus(adjudicated, 1.0, votes.size());
            if (votes.size() < f.votesNeeded()) {
                tooFew++;
            } else if (consensus.label() == null) {
                noMajority++;
            } else if (!consensus.label().equals("A") && !consensus.label().equals("B")) {
                tieOrBad++;
            } else if (consensus.agreement() < f.agreementNeeded()) {
                lowAgreement++;
            } else if (f.strengthWeighted() && margin(consensus.label(), votes) <= 0) {
                noMargin++;
            } else {
                items.add(item(kind, e.getKey(), comparisons.get(e.getKey()), consensus, votes, f, graded));
            }
        }
        return new Frozen(items, new Summary(byComparison.size(), judgments, items.size(), noMajority, tieOrBad, tooFew, lowAgreement,
                noMargin));
    }

    /**
     * How much better the chosen response is, by the votes: the mean of each vote's strength score
     * (see {@link Strength}), positive for the chosen side, negative for the other, 0 for tie or both bad.
     */
    static double margin(String chosen, List<Vote> votes) {
        double sum = 0;
        for (Vote v : votes) {
            if (v.choice().equals("A") || v.choice().equals("B")) {
                sum += (v.choice().equals(chosen) ? 1 : -1) * Strength.scoreOf(v.strength());
            }
        }
        return sum / votes.size();
    }

    private String criterionVerdict(String criteriaJson, String criterion) {
        if (criteriaJson == null) return null;
        try {
            JsonNode verdict = json.readTree(criteriaJson).get(criterion);
            return verdict == null || verdict.isNull() ? null : verdict.asText();
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Thumbs (the latest verdict on each answer) as unpaired examples, in the order they were
     * given; {@code from}/{@code to} bound the time they were given, {@code annotators} names
     * their authors (an API key as {@code key:<name>}, or a person).
     */
    private Frozen thumbs(DatasetFilters f) {
        StringBuilder query = new StringBuilder("select prompt, completion, label from thumbs where 1 = 1");
        List<Object> args = new ArrayList<>();
        if (f.from() != null) {
            query.append(" and submitted_at >= ?");
            args.add(f.from());
        }
        if (f.to() != null) {
            query.append(" and submitted_at < ?");
            args.add(f.to());
        }
        if (f.annotators() != null && !f.annotators().isEmpty()) {
            query.append(" and author in (").append("?,".repeat(f.annotators().size() - 1)).append("?)");
            args.addAll(f.annotators());
        }
        query.append(" order by submitted_at, subject");
        List<DatasetItem> items = sql.list(query.toString(), args,
                rs -> DatasetItem.unpaired(tree(rs.getString(1)), assistant(rs.getString(2)), rs.getBoolean(3)));
        return new Frozen(items, new Summary(0, items.size(), items.size(), 0, 0, 0, 0, 0));
    }

    /** The adjudicated verdict of each comparison an admin settled (console, disagreement review). */
    private Map<Long, String> adjudications() {
        Map<Long, String> out = new java.util.HashMap<>();
        sql.stream("select comparison_id, choice from adjudications", List.of(), rs -> out.put(rs.getLong(1), rs.getString(2)));
        return out;
    }

    /** Judges whose labels agree with people's less often than {@code threshold} (or never met them). */
    private Set<String> judgesBelow(double threshold) {
        List<Agreement.Label> people = new ArrayList<>(), judges = new ArrayList<>();
        sql.stream("select comparison_id, annotator, choice, judge from preferences", List.of(), rs -> {
            String judge = rs.getString(4);
            if (judge == null) people.add(new Agreement.Label(rs.getString(1), rs.getString(2), rs.getString(3)));
            else judges.add(new Agreement.Label(rs.getString(1), judge, rs.getString(3)));
        });
        Set<String> below = new HashSet<>();
        for (JudgeAgreement.Score s : JudgeAgreement.of(people, judges)) if (!s.atLeast(threshold)) below.add(s.judge());
        return below;
    }

    record Vote(String eventId, String annotator, String choice, String judge, String strength, String criteria) {
    }

    private DatasetItem item(String kind, long comparisonId, String[] row, Agreement.Consensus consensus, List<Vote> votes,
                             DatasetFilters f, boolean graded) {
        try {
            JsonNode prompt = json.readTree(row[0]);
            String chosen = consensus.label().equals("A") ? row[1] : row[2];
            String rejected = consensus.label().equals("A") ? row[2] : row[1];
            if (kind.equals(Dataset.SFT)) {
                ArrayNode messages = ((ArrayNode) prompt).deepCopy();
                messages.addObject().put("role", "assistant").put("content", chosen);
                return DatasetItem.sft(comparisonId, messages);
            }
            ArrayNode raw = json.createArrayNode();
            for (Vote v : votes) {
                var o = raw.addObject().put("eventId", v.eventId()).put("annotator", v.annotator()).put("choice", v.choice());
                if (v.judge() != null) o.put("judge", v.judge());
                if (v.strength() != null) o.put("strength", v.strength());
                if (v.criteria() != null) o.set("criteria", json.readTree(v.criteria()));
            }
            double margin = margin(consensus.label(), votes);
            double weight = (f.weighted() ? consensus.agreement() : 1.0) * (f.strengthWeighted() ? margin : 1.0);
            return new DatasetItem(comparisonId, prompt, assistant(chosen), assistant(rejected), null, consensus.label(),
                    consensus.agreement(), consensus.votes(), weight, raw, graded ? margin : null);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private JsonNode tree(String text) {
        try {
            return json.readTree(text);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private JsonNode assistant(String content) {
        ArrayNode turn = json.createArrayNode();
        turn.addObject().put("role", "assistant").put("content", content);
        return turn;
    }

    /** Stores a new dataset version with its items, in one transaction; returns it. */
    Dataset store(String name, String kind, String filtersJson, String summaryJson, List<DatasetItem> items, String user) {
        return QuarkusTransaction.requiringNew().call(() -> {
            Dataset d = new Dataset();
            d.name = name;
            d.kind = kind;
            d.filters = filtersJson;
            d.summary = summaryJson;
            d.itemCount = items.size();
            d.contentHash = hash(items);
            d.createdBy = user;
            d.persist();
            insertItems(d.id, items);
            return d;
        });
    }

    private void insertItems(long datasetId, List<DatasetItem> items) {
        int[] position = {0};
        sql.batch("insert into dataset_items (dataset_id, position, comparison_id, prompt, chosen, rejected, messages, consensus, "
                + "agreement, votes, weight, raw_votes, margin, completion, label) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", items, (ps, it) -> {
            ps.setLong(1, datasetId);
            ps.setInt(2, position[0]++);
            ps.setObject(3, it.comparisonId(), Types.BIGINT);
            ps.setString(4, text(it.prompt()));
            ps.setString(5, text(it.chosen()));
            ps.setString(6, text(it.rejected()));
            ps.setString(7, text(it.messages()));
            ps.setString(8, it.consensus());
            ps.setObject(9, it.agreement(), Types.DOUBLE);
            ps.setObject(10, it.votes(), Types.INTEGER);
            ps.setDouble(11, it.weight());
            ps.setString(12, text(it.rawVotes()));
            ps.setObject(13, it.margin(), Types.DOUBLE);
            ps.setString(14, text(it.completion()));
            ps.setObject(15, it.label(), Types.BOOLEAN);
        });
    }

    private static String text(JsonNode n) {
        return n == null ? null : n.toString();
    }

    String hash(List<DatasetItem> items) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (DatasetItem it : items) {
                sha.update(it.exportLine(json).getBytes(StandardCharsets.UTF_8));
                sha.update((byte) '\n');
            }
            return HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
