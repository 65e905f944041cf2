package org.prefloop.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Jinja {@code chat_template} of tokenizer_config.json, rendered with Jinjava the way
 * transformers renders it with Jinja2 (trim_blocks, lstrip_blocks, no trailing newline, its own
 * {@code tojson}, {@code raise_exception}, {@code strftime_now}). Jinjava lacks some Python
 * that real templates use, so the source is rewritten first: string methods ({@code strip},
 * {@code lstrip}, {@code rstrip}, {@code split}, {@code startswith}, {@code endswith}) become
 * filters with Python's semantics, {@code x[::-1]} becomes a reversed list, and
 * {@code namespace(a=..)} gets its arguments as a map.
 */
public final class ChatTemplate {
    private static final Pattern PY_METHOD = Pattern.compile("\\.(strip|lstrip|rstrip|split|startswith|endswith)\\(");
    private static final Pattern REVERSED = Pattern.compile("\\[\\s*:\\s*:\\s*-1\\s*]");
    private static final Pattern NAMESPACE = Pattern.compile("\\bnamespace\\(");

    private final String source;
    private final Jinjava jinjava;
    private final Map<String, Object> specialTokens;

    /** One turn of a conversation. */
    public record ChatMessage(String role, String content) {
        public ChatMessage {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(content, "content");
        }
    }

    ChatTemplate(String template, Map<String, Object> specialTokens) {
        // Jinja2 drops one trailing newline of a template unless keep_trailing_newline is set
        String t = template.endsWith("\n") ? template.substring(0, template.length() - 1) : template;
        this.source = rewrite(t);
        this.specialTokens = Map.copyOf(specialTokens);
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withUseTrimmingForNotesAndExpressions(true) // {{- x -}} trims like Jinja2
                        .withUseNaturalOperatorPrecedence(true) // messages|length - 1 is (messages|length) - 1
                        .withParseWhitespaceControlStrictly(true)
                        .build())
                .build());
        var ctx = jinjava.getGlobalContext();
        ctx.registerFilter(new PyFilter("py_strip", (s, a) -> strip(s, a, true, true)));
        ctx.registerFilter(new PyFilter("py_lstrip", (s, a) -> strip(s, a, true, false)));
        ctx.registerFilter(new PyFilter("py_rstrip", (s, a) -> strip(s, a, false, true)));
        ctx.registerFilter(new PyFilter("py_split", ChatTemplate::split));
        ctx.registerFilter(new PyFilter("py_startswith", (s, a) -> s.startsWith(String.valueOf(a[0]))));
        ctx.registerFilter(new PyFilter("py_endswith", (s, a) -> s.endsWith(String.valueOf(a[0]))));
        ctx.registerFilter(new ReversedFilter());
        ctx.registerFilter(new JsonFilter());
        ctx.registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        ctx.registerFunction(new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
    }

    /** The chat_template of {@code hfDir}/tokenizer_config.json, with its special tokens. */
    public static ChatTemplate load(Path hfDir) {
        Path file = hfDir.resolve("tokenizer_config.json");
        ObjectNode config = HfJson.readObject(file);
        if (!config.hasNonNull("chat_template")) {
            throw new IllegalArgumentException(file + " has no chat_template");
        }
        if (config.get("chat_template").isContainerNode()) {
            throw new IllegalArgumentException(file + " has several named chat templates; only a single template is supported");
        }
        Map<String, Object> tokens = new HashMap<>();
        for (String key : List.of("bos_token", "eos_token", "pad_token", "unk_token")) {
            String v = TextTokenizer.tokenString(config, key);
            if (v != null) tokens.put(key, v);
        }
        return new ChatTemplate(HfJson.text(config.get("chat_template"), "chat_template"), tokens);
    }

    /** The prompt text of {@code messages}; with {@code addGenerationPrompt}, the opening of the assistant's turn. */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /** As {@link #render(List, boolean)} with extra template variables (e.g. {@code enable_thinking}). */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, Object> extra) {
        if (messages.isEmpty()) throw new IllegalArgumentException("no messages to render");
        List<Map<String, Object>> list = new ArrayList<>();
        for (ChatMessage m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            list.add(map);
        }
        Map<String, Object> vars = new HashMap<>(specialTokens);
        vars.putAll(extra);
        vars.put("messages", list);
        vars.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result = jinjava.renderForResult(source, vars);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new IllegalArgumentException("chat template failed: " + rootMessage(e));
            }
        }
        return result.getOutput();
    }

    /** The template's own words when it calls raise_exception, else Jinjava's message. */
    private static String rootMessage(TemplateError e) {
        Throwable t = e.getException();
        String message = e.getMessage();
        while (t != null) {
            if (t instanceof IllegalArgumentException && t.getMessage() != null) message = t.getMessage();
            t = t.getCause();
        }
        return message;
    }

    /** The template after the Python-compatibility rewrite (for diagnostics). */
    String rewrittenSource() {
        return source;
    }

    // ---- source rewrite ----

    static String rewrite(String template) {
        StringBuilder out = new StringBuilder();
        Matcher m = Pattern.compile("\\{\\{|\\{%").matcher(template);
        int pos = 0;
        while (m.find(pos)) {
            String close = m.group().equals("{{") ? "}}" : "%}";
            int end = findClose(template, m.end(), close);
            out.append(template, pos, m.end());
            out.append(rewriteExpression(template.substring(m.end(), end)));
            out.append(close);
            pos = end + close.length();
        }
        out.append(template.substring(pos));
        return out.toString();
    }

    /** The closing delimiter after {@code from}, skipping string literals. */
    private static int findClose(String s, int from, String close) {
        // a whitespace-control '-' before it stays part of the tag text
        int at = scan(s, from, (i, c, depth) -> s.startsWith(close, i));
        if (at < 0) throw new IllegalArgumentException("chat template has an unclosed tag");
        return at;
    }

    static String rewriteExpression(String e) {
        String prev;
        do {
            prev = e;
            e = rewriteFirst(e, REVERSED, (receiver, rest) -> "(" + receiver + "|py_reversed)" + rest);
            e = rewriteMethod(e);
            e = rewriteNamespace(e);
        } while (!e.equals(prev));
        return e;
    }

    private interface Rewriter {
        String apply(String receiver, String rest);
    }

    /** {@code X[::-1]} to {@code (X|py_reversed)}, one occurrence outside string literals. */
    private static String rewriteFirst(String e, Pattern p, Rewriter r) {
        Matcher m = p.matcher(e);
        while (m.find()) {
            if (insideString(e, m.start())) continue;
            int start = receiverStart(e, m.start());
            return e.substring(0, start) + r.apply(e.substring(start, m.start()), e.substring(m.end()));
        }
        return e;
    }

    /** {@code X.lstrip(a)} to {@code (X|py_lstrip(a))}. */
    private static String rewriteMethod(String e) {
        Matcher m = PY_METHOD.matcher(e);
        while (m.find()) {
            if (insideString(e, m.start())) continue;
            int start = receiverStart(e, m.start());
            int argsEnd = matching(e, m.end() - 1);
            String args = e.substring(m.end(), argsEnd).trim();
            String call = "py_" + m.group(1) + (args.isEmpty() ? "" : "(" + args + ")");
            return e.substring(0, start) + "(" + e.substring(start, m.start()) + "|" + call + ")" + e.substring(argsEnd + 1);
        }
        return e;
    }

    /** {@code namespace(a=1, b=x|length - 1)} to {@code namespace({'a': 1, 'b': x|length - 1})}. */
    private static String rewriteNamespace(String e) {
        Matcher m = NAMESPACE.matcher(e);
        while (m.find()) {
            if (insideString(e, m.start())) continue;
            int close = matching(e, m.end() - 1);
            String inner = e.substring(m.end(), close).trim();
            if (inner.isEmpty() || inner.startsWith("{")) continue;
            StringBuilder map = new StringBuilder("{");
            for (String arg : splitTopLevel(inner)) {
                int eq = arg.indexOf('=');
                if (eq < 0) return e; // positional argument: leave it to Jinjava
                if (map.length() > 1) map.append(", ");
                map.append('\'').append(arg.substring(0, eq).trim()).append("': ").append(arg.substring(eq + 1).trim());
            }
            map.append('}');
            return e.substring(0, m.end()) + map + e.substring(close);
        }
        return e;
    }

    /** The comma-separated parts of {@code s}, splitting only at commas outside brackets and strings. */
    private static List<String> splitTopLevel(String s) {
        List<String> parts = new ArrayList<>();
        int start = 0;
        int comma;
        while ((comma = scan(s, start, (i, c, depth) -> c == ',' && depth == 0)) >= 0) {
            parts.add(s.substring(start, comma));
            start = comma + 1;
        }
        parts.add(s.substring(start));
        return parts;
    }

    /** Index of the bracket closing the one at {@code open}. */
    private static int matching(String s, int open) {
        int at = scan(s, open, (i, c, depth) -> depth == 1 && (c == ')' || c == ']' || c == '}'));
        if (at < 0) throw new IllegalArgumentException("chat template has an unbalanced bracket in: " + s);
        return at;
    }

    private static boolean insideString(String s, int at) {
        return scan(s, 0, (i, c, depth) -> i >= at) != at;
    }

    private interface CodeVisitor {
        boolean stopAt(int index, char c, int depth);
    }

    /**
     * The one forward walk over expression text that the rewrites share, as Jinja's lexer sees it:
     * from {@code from}, every character outside string literals goes to {@code visitor} with the
     * bracket depth before it (an opening quote included; escapes inside literals skipped).
     *
     * @return the first index the visitor stops at, or -1 at the end of the text
     */
    private static int scan(String s, int from, CodeVisitor visitor) {
        int depth = 0;
        char quote = 0;
        for (int i = from; i < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
                continue;
            }
            if (visitor.stopAt(i, c, depth)) return i;
            if (c == '"' || c == '\'') quote = c;
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') depth--;
        }
        return -1;
    }

    /** Start of the postfix expression ending just before {@code end}: names, dots, literals, calls and subscripts. */
    private static int receiverStart(String s, int end) {
        int i = end - 1;
        while (i >= 0) {
            char c = s.charAt(i);
            if (c == ')' || c == ']' || c == '}') {
                i = openingOf(s, i) - 1;
            } else if (c == '\'' || c == '"') {
                int j = i - 1;
                while (j >= 0 && !(s.charAt(j) == c && (j == 0 || s.charAt(j - 1) != '\\'))) j--;
                i = j - 1;
            } else if (Character.isLetterOrDigit(c) || c == '_' || c == '.') {
                i--;
            } else {
                break;
            }
        }
        return i + 1;
    }

    private static int openingOf(String s, int close) {
        int depth = 0;
        for (int i = close; i >= 0; i--) {
            char c = s.charAt(i);
            if (c == ')' || c == ']' || c == '}') depth++;
            else if (c == '(' || c == '[' || c == '{') {
                if (--depth == 0) return i;
            }
        }
        throw new IllegalArgumentException("chat template has an unbalanced bracket in: " + s);
    }

    // ---- Python string semantics ----

    static String strip(String s, Object[] args, boolean left, boolean right) {
        String chars = args.length == 0 || args[0] == null ? null : String.valueOf(args[0]);
        int from = 0;
        int to = s.length();
        while (left && from < to && (chars == null ? Character.isWhitespace(s.charAt(from)) : chars.indexOf(s.charAt(from)) >= 0)) from++;
        while (right && to > from && (chars == null ? Character.isWhitespace(s.charAt(to - 1)) : chars.indexOf(s.charAt(to - 1)) >= 0)) to--;
        return s.substring(from, to);
    }

    /** str.split: with a separator, every piece kept (trailing empty ones too); without, split on whitespace runs. */
    static List<String> split(String s, Object[] args) {
        List<String> out = new ArrayList<>();
        if (args.length == 0 || args[0] == null) {
            for (String p : s.trim().split("\\s+")) if (!p.isEmpty()) out.add(p);
            return out;
        }
        String sep = String.valueOf(args[0]);
        if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
        int from = 0;
        int at;
        while ((at = s.indexOf(sep, from)) >= 0) {
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    public static String raiseException(String message) {
        throw new IllegalArgumentException(message);
    }

    /** Python strftime of the local time, the directives chat templates use. */
    public static String strftimeNow(String format) {
        LocalDateTime now = LocalDateTime.now();
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            char d = format.charAt(++i);
            out.append(switch (d) {
                case 'd' -> String.format("%02d", now.getDayOfMonth());
                case 'm' -> String.format("%02d", now.getMonthValue());
                case 'Y' -> Integer.toString(now.getYear());
                case 'y' -> String.format("%02d", now.getYear() % 100);
                case 'b' -> now.format(DateTimeFormatter.ofPattern("MMM", java.util.Locale.ENGLISH));
                case 'B' -> now.format(DateTimeFormatter.ofPattern("MMMM", java.util.Locale.ENGLISH));
                case 'H' -> String.format("%02d", now.getHour());
                case 'M' -> String.format("%02d", now.getMinute());
                case 'S' -> String.format("%02d", now.getSecond());
                case '%' -> "%";
                default -> "%" + d;
            });
        }
        return out.toString();
    }

    /** json.dumps as transformers' tojson calls it: ", " and ": " separators, no ASCII escaping. */
    static String toJson(Object v) {
        StringBuilder out = new StringBuilder();
        appendJson(out, v);
        return out.toString();
    }

    private static void appendJson(StringBuilder out, Object v) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (v instanceof Number n) {
            out.append(n);
        } else if (v instanceof Map<?, ?> map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                if (!first) out.append(", ");
                first = false;
                appendJson(out, String.valueOf(e.getKey()));
                out.append(": ");
                appendJson(out, e.getValue());
            }
            out.append('}');
        } else if (v instanceof Collection<?> list) {
            out.append('[');
            boolean first = true;
            for (Object o : list) {
                if (!first) out.append(", ");
                first = false;
                appendJson(out, o);
            }
            out.append(']');
        } else {
            String s = v.toString();
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    default -> {
                        if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                        else out.append(c);
                    }
                }
            }
            out.append('"');
        }
    }

    private record PyFilter(String name, BiFunction<String, Object[], Object> fn) implements Filter {
        @Override
        public String getName() {
            return name;
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return fn.apply(var == null ? "" : var.toString(), args);
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            return fn.apply(var == null ? "" : var.toString(), args);
        }
    }

    private static final class ReversedFilter implements Filter {
        @Override
        public String getName() {
            return "py_reversed";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var instanceof String s) return new StringBuilder(s).reverse().toString();
            List<Object> out = new ArrayList<>();
            if (var instanceof Iterable<?> it) it.forEach(out::add);
            java.util.Collections.reverse(out);
            return out;
        }
    }

    private static final class JsonFilter implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return toJson(var);
        }
    }
}
