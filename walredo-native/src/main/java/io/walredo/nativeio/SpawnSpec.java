// SPDX-License-Identifier: Apache-2.0
package io.walredo.nativeio;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What to start. The executable is run as-is (no PATH search); the child's environment is exactly {@code
 * environment} (nothing is inherited from this JVM); it gets exactly fds 0, 1 and 2 (pipes to the parent).
 *
 * @param executable absolute path of the program
 * @param argv the arguments, {@code argv[0]} first (conventionally the program name)
 * @param environment the complete environment; iteration order is kept
 * @param containment working directory, umask, resource limits and OOM score of the child
 */
public record SpawnSpec(Path executable, List<String> argv, Map<String, String> environment, Containment containment) {

    /** A spec with {@link Containment#NONE}. */
    public SpawnSpec(Path executable, List<String> argv, Map<String, String> environment) {
        this(executable, argv, environment, Containment.NONE);
    }

    /**
     * Validates and copies.
     *
     * @throws IllegalArgumentException if the path is relative, argv is empty, a string contains NUL, or an
     *     environment name is empty or contains '='
     * @throws NullPointerException if anything is null
     */
    public SpawnSpec {
        Objects.requireNonNull(executable, "executable");
        Objects.requireNonNull(argv, "argv");
        Objects.requireNonNull(environment, "environment");
        Objects.requireNonNull(containment, "containment");
        if (!executable.isAbsolute()) {
            throw new IllegalArgumentException("executable must be an absolute path: " + executable);
        }
        noNul("executable", executable.toString());
        argv = List.copyOf(argv);
        if (argv.isEmpty()) {
            throw new IllegalArgumentException("argv must contain at least argv[0]");
        }
        for (int i = 0; i < argv.size(); i++) {
            noNul("argv[" + i + "]", argv.get(i));
        }
        LinkedHashMap<String, String> env = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : environment.entrySet()) {
            String name = Objects.requireNonNull(e.getKey(), "environment name");
            String value = Objects.requireNonNull(e.getValue(), () -> "value of environment variable " + name);
            if (name.isEmpty() || name.indexOf('=') >= 0) {
                throw new IllegalArgumentException("environment name must be non-empty and contain no '=': " + name);
            }
            noNul("environment name " + name, name);
            noNul("environment variable " + name, value);
            env.put(name, value);
        }
        environment = Collections.unmodifiableMap(env);
    }

    private static void noNul(String what, String s) {
        if (s.indexOf('\0') >= 0) {
            throw new IllegalArgumentException(what + " contains a NUL character");
        }
    }
}
