package org.prefloop.dataset;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import org.prefloop.platform.Sql;

import java.io.IOException;
import java.io.Writer;
import java.util.List;

/** Writes a frozen dataset in TRL's JSON Lines form, streaming from the store (for downloads and for training runs). */
@ApplicationScoped
public class DatasetExporter {
    @Inject
    Sql sql;
    @Inject
    ObjectMapper json;

    public void write(long datasetId, Writer w) throws IOException {
        sql.stream("select prompt, chosen, rejected, messages, weight, margin, completion, label from dataset_items "
                + "where dataset_id = ? order by position", List.of(datasetId), rs -> {
            DatasetItem it = new DatasetItem(null, tree(rs.getString(1)), tree(rs.getString(2)), tree(rs.getString(3)),
                    tree(rs.getString(4)), null, null, null, rs.getDouble(5), null, rs.getObject(6, Double.class),
                    tree(rs.getString(7)), rs.getObject(8, Boolean.class));
            w.write(it.exportLine(json));
            w.write('\n');
        });
        w.flush();
    }

    private JsonNode tree(String text) {
        try {
            return text == null ? null : json.readTree(text);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
