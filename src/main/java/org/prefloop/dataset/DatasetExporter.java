package org.prefloop.dataset;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.agroal.api.AgroalDataSource;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

import java.io.IOException;
import java.io.Writer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

/** Writes a frozen dataset in TRL's JSON Lines form, streaming from the store (for downloads and for training runs). */
@ApplicationScoped
public class DatasetExporter {
    @Inject
    AgroalDataSource db;
    @Inject
    ObjectMapper json;

    public void write(long datasetId, Writer w) throws IOException {
        try (Connection c = db.getConnection()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("select prompt, chosen, rejected, messages, weight, margin, completion, label from dataset_items "
                    + "where dataset_id = ? order by position")) {
                ps.setFetchSize(500);
                ps.setLong(1, datasetId);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        DatasetItem it = new DatasetItem(null, tree(rs.getString(1)), tree(rs.getString(2)), tree(rs.getString(3)),
                                tree(rs.getString(4)), null, null, null, rs.getDouble(5), null, (Double) rs.getObject(6, Double.class),
                                tree(rs.getString(7)), (Boolean) rs.getObject(8));
                        w.write(it.exportLine(json));
                        w.write('\n');
                    }
                }
            }
            c.commit();
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
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
