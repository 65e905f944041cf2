package org.prefloop.serve;

import com.fasterxml.jackson.databind.JsonNode;
import org.prefloop.platform.ProblemException;

/** Optional numeric fields of an /api body, checked by type and range; a refusal is a 400 problem naming the field. */
final class Fields {
    private Fields() {
    }

    static long integer(JsonNode body, String name, long fallback, long min, long max) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return fallback;
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw ProblemException.badRequest(name, name + " must be an integer, got " + v);
        long n = v.asLong();
        if (n < min || n > max) throw ProblemException.badRequest(name, name + " must be between " + min + " and " + max + ", got " + n);
        return n;
    }

    static double number(JsonNode body, String name, double fallback, double min, double max) {
        JsonNode v = body.get(name);
        if (v == null || v.isNull()) return fallback;
        if (!v.isNumber()) throw ProblemException.badRequest(name, name + " must be a number, got " + v);
        double d = v.asDouble();
        if (!(d >= min && d <= max)) throw ProblemException.badRequest(name, name + " must be between " + min + " and " + max + ", got " + v);
        return d;
    }
}
