// A stand-in for SPICE's spice-1.0.jar (edu.anu.spice.SpiceScorer as pycocoevalcap ships it) that
// speaks its command line, input and output, so that tests can run tipcap-eval's --spice-jar path
// without Stanford CoreNLP. Input: [{"image_id", "test", "refs": [...]}]. Output (-out): the same
// images in the same order, [{"image_id", "scores": {"All": {"tp", "fp", "fn", "f", "pr", "re",
// "numImages"}, and with -subset "Object", "Attribute", "Relation", "Cardinality", "Color",
// "Size"}}], pretty-printed with two-space indents (the jar's JSON.stringify(..., null, 2)), NaN
// as null. Its score is not SPICE: over words, precision = test words found in a reference,
// recall = distinct reference words found in the test, f their harmonic mean.
// For the tests: it writes standin-invocation.txt in its working folder (the folder, the JVM's
// options, its arguments, the image ids in input order); SPICE_STANDIN_EXIT=N makes it fail with
// status N, SPICE_STANDIN_REVERSE=1 writes the images in reverse order.
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

public class SpiceStandIn {
    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("SPICE version 1 (stand-in)\n\nUsage: java -Xmx8G -jar spice-*.jar <input.json> [options]");
            System.exit(2);
        }
        String input = args[0], output = null, cache = null;
        boolean subset = false, silent = false;
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "-out": output = args[++i]; break;
                case "-cache": cache = args[++i]; break;
                case "-threads": i++; break;
                case "-detailed": case "-noSynsets": break;
                case "-subset": subset = true; break;
                case "-silent": silent = true; break;
                default:
                    System.err.println("Unknown option \"" + args[i] + "\"");
                    System.exit(1);
            }
        }
        List<Object> items = asList(new JsonReader(new String(Files.readAllBytes(Paths.get(input)), StandardCharsets.UTF_8)).value());
        StringBuilder log = new StringBuilder();
        log.append("cwd ").append(Paths.get("").toAbsolutePath()).append('\n');
        log.append("jvm ").append(String.join(" ", ManagementFactory.getRuntimeMXBean().getInputArguments())).append('\n');
        log.append("args ").append(String.join(" ", args)).append('\n');
        for (Object o : items) log.append("image ").append(JsonWriter.write(((Map<?, ?>) o).get("image_id"), 0)).append('\n');
        Files.write(Paths.get("standin-invocation.txt"), log.toString().getBytes(StandardCharsets.UTF_8));
        String exit = System.getenv("SPICE_STANDIN_EXIT");
        if (exit != null) {
            System.err.println("Error: Could not score batched file input (stand-in told to fail)");
            System.exit(Integer.parseInt(exit));
        }
        if (cache != null) Files.createDirectories(Paths.get(cache));
        List<Object> results = new ArrayList<>();
        for (Object o : items) {
            Map<?, ?> item = (Map<?, ?>) o;
            Map<String, Object> all = score((String) item.get("test"), asList(item.get("refs")));
            Map<String, Object> scores = new LinkedHashMap<>();
            scores.put("All", all);
            if (subset)
                for (String category : new String[] {"Object", "Attribute", "Relation", "Cardinality", "Color", "Size"})
                    scores.put(category, all);
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("image_id", item.get("image_id"));
            row.put("scores", scores);
            results.add(row);
        }
        if ("1".equals(System.getenv("SPICE_STANDIN_REVERSE"))) Collections.reverse(results);
        if (!silent) System.out.println("********  SPICE Evaluation (stand-in)  ********");
        if (output != null) Files.write(Paths.get(output), JsonWriter.write(results, 0).getBytes(StandardCharsets.UTF_8));
        System.out.println("SPICE evaluation took: 0.000 s");
    }

    @SuppressWarnings("unchecked")
    static List<Object> asList(Object o) { return (List<Object>) o; }

    static Map<String, Object> score(String test, List<Object> refs) {
        Set<String> refWords = new HashSet<>();
        for (Object r : refs)
            for (String w : ((String) r).split(" ")) if (!w.isEmpty()) refWords.add(w);
        int testWords = 0, found = 0;
        Set<String> recalled = new HashSet<>();
        for (String w : test.split(" ")) {
            if (w.isEmpty()) continue;
            testWords++;
            if (refWords.contains(w)) { found++; recalled.add(w); }
        }
        double pr = (double) found / testWords, re = (double) recalled.size() / refWords.size();
        double f = 2 * pr * re / (pr + re);
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("tp", found);
        e.put("fp", testWords - found);
        e.put("fn", refWords.size() - recalled.size());
        e.put("f", f);
        e.put("pr", pr);
        e.put("re", re);
        e.put("numImages", 1);
        return e;
    }

    // JSON in: objects, arrays, strings (with escapes), numbers (integers as Long), literals.
    static final class JsonReader {
        final String s;
        int i;
        JsonReader(String s) { this.s = s; }
        void ws() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }
        Object value() {
            ws();
            char c = s.charAt(i);
            if (c == '{') {
                Map<String, Object> m = new LinkedHashMap<>();
                i++;
                ws();
                if (s.charAt(i) == '}') { i++; return m; }
                for (;;) {
                    ws();
                    String k = (String) value();
                    ws();
                    i++;  // :
                    m.put(k, value());
                    ws();
                    if (s.charAt(i++) == '}') return m;
                }
            }
            if (c == '[') {
                List<Object> l = new ArrayList<>();
                i++;
                ws();
                if (s.charAt(i) == ']') { i++; return l; }
                for (;;) {
                    l.add(value());
                    ws();
                    if (s.charAt(i++) == ']') return l;
                }
            }
            if (c == '"') {
                StringBuilder b = new StringBuilder();
                i++;
                for (char d; (d = s.charAt(i++)) != '"';) {
                    if (d != '\\') { b.append(d); continue; }
                    char e = s.charAt(i++);
                    switch (e) {
                        case 'n': b.append('\n'); break;
                        case 't': b.append('\t'); break;
                        case 'r': b.append('\r'); break;
                        case 'b': b.append('\b'); break;
                        case 'f': b.append('\f'); break;
                        case 'u': b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; break;
                        default: b.append(e);
                    }
                }
                return b.toString();
            }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            if (start == i) {
                for (String lit : new String[] {"true", "false", "null"})
                    if (s.startsWith(lit, i)) { i += lit.length(); return lit.equals("null") ? null : Boolean.valueOf(lit); }
                throw new IllegalArgumentException("bad JSON at " + i);
            }
            String num = s.substring(start, i);
            return num.matches("-?\\d+") ? (Object) Long.valueOf(num) : (Object) Double.valueOf(num);
        }
    }

    static final class JsonWriter {
        static String indent(int n) { return " ".repeat(2 * n); }
        static String write(Object o, int depth) {
            if (o == null) return "null";
            if (o instanceof Double) { double d = (Double) o; return Double.isNaN(d) || Double.isInfinite(d) ? "null" : Double.toString(d); }
            if (o instanceof Number || o instanceof Boolean) return o.toString();
            if (o instanceof String) {
                StringBuilder b = new StringBuilder("\"");
                for (char c : ((String) o).toCharArray()) {
                    if (c == '"' || c == '\\') b.append('\\').append(c);
                    else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
                return b.append('"').toString();
            }
            StringBuilder b = new StringBuilder();
            if (o instanceof Map) {
                b.append("{\n");
                int k = 0;
                for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                    if (k++ > 0) b.append(",\n");
                    b.append(indent(depth + 1)).append(write(e.getKey(), 0)).append(": ").append(write(e.getValue(), depth + 1));
                }
                return b.append('\n').append(indent(depth)).append('}').toString();
            }
            b.append("[\n");
            int k = 0;
            for (Object e : (List<?>) o) {
                if (k++ > 0) b.append(",\n");
                b.append(indent(depth + 1)).append(write(e, depth + 1));
            }
            return b.append('\n').append(indent(depth)).append(']').toString();
        }
    }
}
