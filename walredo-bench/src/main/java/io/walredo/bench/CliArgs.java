// SPDX-License-Identifier: Apache-2.0
package io.walredo.bench;

import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.Supplier;
import picocli.CommandLine;

/**
 * The one command-line parser of the demo, the soak and the benchmarks: picocli over a command object whose
 * {@code @Option} fields say what each takes, plus what they share: the converters of counts and durations, whose
 * messages name what a value must be, the options the demo and the soak both take ({@link TenantsOption},
 * {@link HelpOption}) and their way into {@code main} ({@link #parseOrExit}). {@code --name value} and
 * {@code --name=value} both work; {@code --help} prints picocli's generated usage.
 */
public final class CliArgs {
    /** Exit status of a usage error (a bad or missing option), for every program here. */
    public static final int EXIT_USAGE = 2;

    private CliArgs() {}

    /**
     * A program's way from {@code main(args)} to its options, the same for the demo and the soak: {@code parse}
     * turns the arguments into options (null for {@code --help}), or throws {@link IllegalArgumentException} naming
     * the problem. On {@code --help} the usage goes to stdout and the result is empty; on a usage error
     * {@code "program: problem"} and the usage go to stderr and the JVM exits with {@link #EXIT_USAGE}.
     *
     * @param program the name error messages start with, e.g. "demo"
     * @param args the command line
     * @param parse the program's parser, e.g. {@code Demo::parse}
     * @param usage the program's usage text
     * @return the options, or empty if help was printed
     */
    public static <O> Optional<O> parseOrExit(
            String program, String[] args, Function<String[], O> parse, Supplier<String> usage) {
        O options;
        try {
            options = parse.apply(args);
        } catch (IllegalArgumentException e) {
            System.err.println(program + ": " + e.getMessage());
            System.err.println(usage.get());
            System.exit(EXIT_USAGE);
            return Optional.empty();
        }
        if (options == null) {
            System.out.println(usage.get());
        }
        return Optional.ofNullable(options);
    }

    /**
     * Parses {@code args} into {@code command}'s annotated fields.
     *
     * @return {@code command}, or null if help was asked for
     * @throws IllegalArgumentException naming the option and the problem
     */
    public static <T> T parse(T command, String[] args) {
        CommandLine cl = new CommandLine(command);
        try {
            cl.parseArgs(args);
        } catch (CommandLine.ParameterException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        return cl.isUsageHelpRequested() ? null : command;
    }

    /** The usage text picocli generates for {@code command}, without colours. */
    public static String usage(Object command) {
        return new CommandLine(command)
                .getUsageMessage(CommandLine.Help.Ansi.OFF)
                .stripTrailing();
    }

    /** {@code --tenants N}, default 200: the demo's and the soak's tenant count ({@code @Mixin}). */
    public static final class TenantsOption {
        @CommandLine.Option(
                names = "--tenants",
                paramLabel = "N",
                defaultValue = "200",
                converter = PositiveInt.class,
                description = "tenants (default ${DEFAULT-VALUE})")
        int tenants;

        /** The parsed count, at least 1. */
        public int tenants() {
            return tenants;
        }
    }

    /** {@code -h}/{@code --help}, mixed into every command ({@code @Mixin}). */
    public static final class HelpOption {
        @CommandLine.Option(
                names = {"-h", "--help"},
                usageHelp = true,
                description = "this text")
        boolean help;
    }

    /** A whole number above zero. */
    public static final class PositiveInt implements CommandLine.ITypeConverter<Integer> {
        @Override
        public Integer convert(String v) {
            return atLeast(v, 1, "a positive whole number");
        }
    }

    /** A whole number, zero or above. */
    public static final class NonNegativeInt implements CommandLine.ITypeConverter<Integer> {
        @Override
        public Integer convert(String v) {
            return atLeast(v, 0, "a whole number, 0 or more");
        }
    }

    /** {@code 500ms}, {@code 30s}, {@code 2m} or a bare number of seconds; positive. */
    public static final class Seconds implements CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String v) {
            return duration(
                    v,
                    ChronoUnit.SECONDS,
                    ChronoUnit.FOREVER.getDuration(),
                    "a positive duration such as 500ms, 30s or 2m");
        }
    }

    /** {@code 100ms}, {@code 5s}, {@code 2m} or a bare number of milliseconds; positive, at most a day. */
    public static final class MillisUpToADay implements CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String v) {
            return duration(
                    v,
                    ChronoUnit.MILLIS,
                    Duration.ofDays(1),
                    "a positive duration of at most a day such as 100ms, 5s or 2m");
        }
    }

    /** Minutes: a number above 0 and at most a week, fractions allowed ({@code 0.5} is 30 s); to the millisecond. */
    public static final class Minutes implements CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String v) {
            double minutes;
            try {
                minutes = Double.parseDouble(v);
            } catch (NumberFormatException e) {
                throw new CommandLine.TypeConversionException("MINUTES must be a number, got '" + v + "'");
            }
            if (!(minutes > 0) || minutes > 7 * 24 * 60) {
                throw new CommandLine.TypeConversionException("MINUTES must be above 0 and at most a week, got " + v);
            }
            return Duration.ofMillis(Math.round(minutes * 60_000));
        }
    }

    private static int atLeast(String v, int min, String rule) {
        try {
            int n = Integer.parseInt(v);
            if (n >= min) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new CommandLine.TypeConversionException("takes " + rule + ", got '" + v + "'");
    }

    /**
     * Parses {@code 500ms}, {@code 30s}, {@code 2m} or a bare number in {@code bareUnit}; positive and at most
     * {@code max}.
     *
     * @param rule how the error message describes an accepted value, e.g. "a positive duration such as 30s"
     */
    static Duration duration(String v, ChronoUnit bareUnit, Duration max, String rule) {
        try {
            Duration d;
            if (v.endsWith("ms")) {
                d = Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
            } else if (v.endsWith("s")) {
                d = Duration.ofSeconds(Long.parseLong(v.substring(0, v.length() - 1)));
            } else if (v.endsWith("m")) {
                d = Duration.ofMinutes(Long.parseLong(v.substring(0, v.length() - 1)));
            } else {
                d = Duration.of(Long.parseLong(v), bareUnit);
            }
            if (!d.isNegative() && !d.isZero() && d.compareTo(max) <= 0) {
                return d;
            }
        } catch (NumberFormatException | ArithmeticException e) {
            // reported below
        }
        throw new CommandLine.TypeConversionException("takes " + rule + ", got '" + v + "'");
    }
}
