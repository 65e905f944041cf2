package org.prefloop.dataset;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.annotation.security.RolesAllowed;
import jakarta.inject.Inject;
import jakarta.ws.rs.DefaultValue;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import org.prefloop.identity.User;
import org.prefloop.platform.ProblemException;
import org.prefloop.platform.Sql;

import java.util.ArrayList;
import java.util.List;

/**
 * Looking into a frozen dataset before training on it: its items, searched by text (prompt, chosen,
 * rejected or conversation, case-insensitive) and filtered by consensus and agreement, a page at a time.
 */
@Path("/api/datasets/{id}/items")
@Produces(MediaType.APPLICATION_JSON)
@RolesAllowed(User.ADMIN)
public class DatasetBrowser {
    @Inject
    Sql sql;

    @Inject
    ObjectMapper json;

    /** One item as stored; prompt, chosen, rejected and messages in their TRL form. */
    public record Item(int position, Long comparisonId, JsonNode prompt, JsonNode chosen, JsonNode rejected, JsonNode messages,
                       String consensus, Double agreement, Integer votes, double weight, Double margin, JsonNode rawVotes) {
    }

    /** {@code total}: items matching the search, of which {@code items} is the page from {@code offset}. */
    public record Page(long total, int offset, List<Item> items) {
    }

    @GET
    public Page items(@PathParam("id") long id, @QueryParam("q") String q, @QueryParam("consensus") String consensus,
                      @QueryParam("maxAgreement") Double maxAgreement, @QueryParam("offset") @DefaultValue("0") int offset,
                      @QueryParam("limit") @DefaultValue("50") int limit) {
        if (Dataset.findById(id) == null) throw ProblemException.notFound("id", "dataset " + id + " does not exist");
        if (limit < 1 || limit > 500) throw ProblemException.invalid("limit", "limit must be between 1 and 500");
        if (offset < 0) throw ProblemException.invalid("offset", "offset must be 0 or more");
        if (consensus != null && !consensus.equals("A") && !consensus.equals("B")) {
            throw ProblemException.invalid("consensus", "consensus must be A or B");
        }
        if (maxAgreement != null && (maxAgreement < 0 || maxAgreement > 1)) {
            throw ProblemException.invalid("maxAgreement", "maxAgreement is a share between 0 and 1");
        }
        StringBuilder where = new StringBuilder(" where dataset_id = ?");
        List<Object> args = new ArrayList<>(List.of(id));
        if (q != null && !q.isBlank()) {
            if (q.length() > 200) throw ProblemException.invalid("q", "q is longer than 200 characters");
            // the stored JSON text is searched; '%' and '_' in q are taken literally
            String like = "%" + q.strip().toLowerCase().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%";
            where.append(" and (lower(coalesce(prompt, '')) like ? escape '\\' or lower(coalesce(chosen, '')) like ? escape '\\'"
                    + " or lower(coalesce(rejected, '')) like ? escape '\\' or lower(coalesce(messages, '')) like ? escape '\\')");
            for (int i = 0; i < 4; i++) args.add(like);
        }
        if (consensus != null) {
            where.append(" and consensus = ?");
            args.add(consensus);
        }
        if (maxAgreement != null) {
            where.append(" and agreement <= ?");
            args.add(maxAgreement);
        }
        long total = sql.list("select count(*) from dataset_items" + where, args, rs -> rs.getLong(1)).get(0);
        List<Object> page = new ArrayList<>(args);
        page.add(limit);
        page.add(offset);
        List<Item> items = sql.list("select position, comparison_id, prompt, chosen, rejected, messages, consensus, agreement, votes, "
                + "weight, margin, raw_votes from dataset_items" + where + " order by position limit ? offset ?", page, rs -> new Item(
                rs.getInt(1), rs.getObject(2, Long.class), tree(rs.getString(3)), tree(rs.getString(4)), tree(rs.getString(5)),
                tree(rs.getString(6)), rs.getString(7), rs.getObject(8, Double.class), rs.getObject(9, Integer.class),
                rs.getDouble(10), rs.getObject(11, Double.class), tree(rs.getString(12))));
        return new Page(total, offset, items);
    }

    private JsonNode tree(String text) {
        try {
            return text == null ? null : json.readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
