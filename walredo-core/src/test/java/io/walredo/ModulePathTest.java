// SPDX-License-Identifier: Apache-2.0
package io.walredo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.walredo.testing.FakeRedoModel;
import java.io.File;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library as a JPMS user sees it: walredo-core, walredo-native and their dependencies on {@code --module-path},
 * no flags beyond {@code --enable-native-access}. The other tests run on the class path, where module-info is
 * ignored; this one checks that the descriptors work (jnr-ffi binds libc from inside the named module
 * {@code io.walredo.nativeio}, see {@code NativeLibrary}) and that the boundaries hold: a module cannot compile
 * against, nor reflectively call into, {@code io.walredo.internal}, {@code io.walredo.nativeio.internal} or
 * {@code io.walredo.nativeio} (exported to walredo-core only).
 *
 * <p>The module path is core's classes plus the runtime class path Maven writes to
 * {@code target/runtime-classpath.txt} (maven-dependency-plugin's build-classpath, in walredo-core/pom.xml).
 */
class ModulePathTest {

    private static final String LSN = "0/16E2408";
    private static final String RECORD_LSN = "0/16A9388";
    private static final byte[] RECORD = {1, 2, 3};
    private static final BufferTag PAGE = new BufferTag(new RelTag(1663, 13010, 1259, RelTag.MAIN_FORKNUM), 0);

    /** Internal classes, each with a public member; the application module must reach none of them. */
    private static final List<String> FORBIDDEN = List.of(
            "io.walredo.internal.Supervisor",
            "io.walredo.nativeio.internal.NativeLibrary",
            "io.walredo.nativeio.NativeRuntime");

    private static final String APP_MODULE = """
            module app {
                requires io.walredo;
            }
            """;

    /**
     * A ping, one redo whose page is printed in hex, then one reflective call per class in {@link #FORBIDDEN}:
     * reflection needs no readability, so only the missing export stops it (IllegalAccessException), and the
     * package is not open, so setAccessible cannot get around it.
     */
    private static final String APP_MAIN = """
            package app;

            import io.walredo.*;
            import java.lang.reflect.Array;
            import java.lang.reflect.Executable;
            import java.lang.reflect.Method;
            import java.lang.reflect.Modifier;
            import java.nio.file.Path;
            import java.util.HexFormat;

            public final class Main {
                public static void main(String[] args) throws Exception {
                    WalRedoConfig config = WalRedoConfig.builder().redoBinary(16, Path.of(args[0])).build();
                    try (WalRedoManager redo = WalRedoManager.create(config)) {
                        TenantShardId tenant = TenantShardId.parse("3f1c0b7e9a4d4c2a8e5b6d7f8091a2b3");
                        redo.ping(tenant, 16);
                        System.out.println("ping ok");
                        BufferTag page = new BufferTag(new RelTag(1663, 13010, 1259, RelTag.MAIN_FORKNUM), 0);
                        RedoRequest request = RedoRequest.builder(16, page, Lsn.parse(args[1]))
                                .addRecord(WalRecord.of(Lsn.parse(args[2]), false, HexFormat.of().parseHex(args[3])))
                                .build();
                        System.out.println("page " + HexFormat.of().formatHex(redo.redo(tenant, request, AttemptType.READ_PAGE)));
                    }
                    for (int i = 4; i < args.length; i++) {
                        System.out.println(tryToReach(args[i]) + " " + args[i]);
                    }
                }

                private static String tryToReach(String className) throws Exception {
                    Class<?> c = Class.forName(className);
                    Executable member = publicMember(c);
                    if (member.trySetAccessible()) {
                        return "opened";
                    }
                    Object[] values = new Object[member.getParameterCount()];
                    Class<?>[] types = member.getParameterTypes();
                    for (int i = 0; i < values.length; i++) {
                        values[i] = types[i].isPrimitive() ? Array.get(Array.newInstance(types[i], 1), 0) : null;
                    }
                    try {
                        if (member instanceof Method m) {
                            m.invoke(null, values);
                        } else {
                            c.getConstructor(types).newInstance(values);
                        }
                        return "reached";
                    } catch (IllegalAccessException e) {
                        return "blocked";
                    } catch (ReflectiveOperationException | RuntimeException e) {
                        return "reached";
                    }
                }

                private static Executable publicMember(Class<?> c) {
                    for (Method m : c.getDeclaredMethods()) {
                        if (Modifier.isPublic(m.getModifiers()) && Modifier.isStatic(m.getModifiers())) {
                            return m;
                        }
                    }
                    return c.getConstructors()[0];
                }
            }
            """;

    /** Reads native as well, so that only the exports can refuse it. */
    private static final String SNEAK_MODULE = """
            module sneak {
                requires io.walredo;
                requires io.walredo.nativeio;
            }
            """;

    private static final String SNEAK_MAIN = """
            package sneak;

            public final class Sneak {
                io.walredo.internal.Supervisor supervisor;
                io.walredo.nativeio.internal.NativeLibrary nativeLibrary;
                io.walredo.nativeio.NativeRuntime nativeRuntime;
            }
            """;

    @Test
    @Timeout(value = 60, unit = TimeUnit.SECONDS)
    void anApplicationModuleRedoesAPageAndReachesNoInternalPackage(@TempDir Path dir) throws Exception {
        String modulePath = modulePath();
        Path app = dir.resolve("app");
        List<Diagnostic<? extends JavaFileObject>> appErrors =
                compile(dir.resolve("src/app"), app, modulePath, APP_MODULE, "app/Main.java", APP_MAIN);
        assertTrue(appErrors.isEmpty(), () -> "the application module does not compile: " + appErrors);

        List<String> command = new ArrayList<>(List.of(
                ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=org.jnrproject.jffi",
                "--module-path",
                app + File.pathSeparator + modulePath,
                "-m",
                "app/app.Main",
                FakeRedoModel.binary().toString(),
                LSN,
                RECORD_LSN,
                HexFormat.of().formatHex(RECORD)));
        command.addAll(FORBIDDEN);
        Path output = dir.resolve("app.out");
        Process jvm = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(output.toFile())
                .start();
        if (!jvm.waitFor(45, TimeUnit.SECONDS)) {
            jvm.destroyForcibly();
            fail("the module-path JVM did not finish in 45 s; its output:\n" + Files.readString(output));
        }
        String out = Files.readString(output);
        assertEquals(0, jvm.exitValue(), () -> "the module-path JVM failed:\n" + out);
        List<String> lines = out.lines().toList();
        assertTrue(lines.contains("ping ok"), () -> "no ping:\n" + out);

        RedoRequest request = RedoRequest.builder(16, PAGE, Lsn.parse(LSN))
                .addRecord(WalRecord.of(Lsn.parse(RECORD_LSN), false, RECORD))
                .build();
        String expected = "page " + HexFormat.of().formatHex(FakeRedoModel.expectedPage(request));
        assertTrue(lines.contains(expected), () -> "the redone page differs from FakeRedoModel's:\n" + out);
        for (String name : FORBIDDEN) {
            assertTrue(lines.contains("blocked " + name), () -> name + " was not refused:\n" + out);
        }
    }

    @Test
    void aModuleThatImportsInternalPackagesDoesNotCompile(@TempDir Path dir) throws Exception {
        List<Diagnostic<? extends JavaFileObject>> errors = compile(
                dir.resolve("src/sneak"),
                dir.resolve("sneak"),
                modulePath(),
                SNEAK_MODULE,
                "sneak/Sneak.java",
                SNEAK_MAIN);
        List<String> messages =
                errors.stream().map(d -> d.getMessage(Locale.ROOT)).toList();
        for (String name : FORBIDDEN) {
            String pkg = name.substring(0, name.lastIndexOf('.'));
            assertTrue(
                    messages.stream().anyMatch(m -> m.contains("package " + pkg + " is not visible")),
                    () -> pkg + " is visible to module sneak; javac said: " + messages);
        }
    }

    /** Compiles one module; returns its errors (none: it compiled). */
    private static List<Diagnostic<? extends JavaFileObject>> compile(
            Path src, Path out, String modulePath, String moduleInfo, String mainFile, String main) throws IOException {
        Files.createDirectories(src.resolve(mainFile).getParent());
        Files.writeString(src.resolve("module-info.java"), moduleInfo, StandardCharsets.UTF_8);
        Files.writeString(src.resolve(mainFile), main, StandardCharsets.UTF_8);
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertFalse(javac == null, "this test needs a JDK (javax.tools), not a JRE");
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        try (StandardJavaFileManager files =
                javac.getStandardFileManager(diagnostics, Locale.ROOT, StandardCharsets.UTF_8)) {
            Iterable<? extends JavaFileObject> units =
                    files.getJavaFileObjects(src.resolve("module-info.java"), src.resolve(mainFile));
            List<String> options = List.of("--module-path", modulePath, "-d", out.toString(), "-proc:none");
            javac.getTask(null, files, diagnostics, options, null, units).call();
        }
        return diagnostics.getDiagnostics().stream()
                .filter(d -> d.getKind() == Diagnostic.Kind.ERROR)
                .toList();
    }

    /** walredo-core's classes (with its module-info) and its runtime dependencies, walredo-native first. */
    private static String modulePath() throws IOException, URISyntaxException {
        Path core = Path.of(WalRedoManager.class
                .getProtectionDomain()
                .getCodeSource()
                .getLocation()
                .toURI());
        assertTrue(Files.isRegularFile(core.resolve("module-info.class")), () -> "no module-info.class in " + core);
        Path runtime = Path.of("target", "runtime-classpath.txt");
        assertTrue(
                Files.isRegularFile(runtime),
                () -> runtime.toAbsolutePath() + " is missing; walredo-core/pom.xml"
                        + " writes it (maven-dependency-plugin build-classpath) before the tests");
        String deps = Files.readString(runtime, StandardCharsets.UTF_8).strip();
        return core + File.pathSeparator + deps;
    }
}
