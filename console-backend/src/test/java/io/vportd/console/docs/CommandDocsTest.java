package io.vportd.console.docs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vportd.console.cli.VportdCommand;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The man pages and completions are made from the --help model: every option --help names is in them. */
class CommandDocsTest {

    private static final Pattern OPTION = Pattern.compile("(?<![\\w-])--[a-z][a-z-]+");

    private static Set<String> optionsIn(String text) {
        Set<String> found = new LinkedHashSet<>();
        Matcher m = OPTION.matcher(text);
        while (m.find()) {
            found.add(m.group());
        }
        return found;
    }

    /** The man page as a reader sees the words: roff's escaped dashes and backslashes undone. */
    private static String unroff(String roff) {
        return roff.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "");
    }

    @Test
    void vportdManPageHasEveryOptionOfHelp() {
        String help = VportdCommand.usage();
        String man = unroff(CommandDocs.manPage(VportdCommand.commandLine(), "vportd", "9.9"));
        Set<String> options = optionsIn(help);
        assertTrue(options.containsAll(Set.of("--socket-path", "--port", "--take-over", "--version")), options.toString());
        for (String o : options) {
            assertTrue(man.contains(o), "man page lacks " + o);
        }
        for (CommandLine.Model.OptionSpec o : VportdCommand.commandLine().getCommandSpec().options()) {
            assertTrue(man.contains(".B " + String.join(", ", o.names())), "no entry for " + o.longestName());
        }
        assertTrue(man.startsWith(".\\\" Generated"), man);
        assertTrue(man.contains(".TH VPORTD 1 \"\" \"vportd 9.9\""), man);
        assertTrue(man.contains("RESIZE FIELD ORDER"), "the --help footer is in NOTES");
        assertTrue(man.contains("(default: 31)"), "default values are filled in");
        assertFalse(man.contains("${DEFAULT-VALUE}"));
    }

    @Test
    void ctlManPageHasEveryCommandAndOption() {
        CommandLine ctl = CommandDocs.ctlCommandLine();
        String man = unroff(CommandDocs.manPage(ctl, "vportd-ctl", "9.9"));
        assertEquals(11, ctl.getSubcommands().size());
        for (var e : ctl.getSubcommands().entrySet()) {
            assertTrue(man.contains(".SS " + e.getKey()), "no section for " + e.getKey());
            for (String o : optionsIn(e.getValue().getUsageMessage())) {
                assertTrue(man.contains(o), e.getKey() + ": man page lacks " + o);
            }
        }
    }

    @Test
    void roffEscapes() {
        assertEquals("\\&.TH x\n\\&'q\na\\eb\\-c", CommandDocs.escape(".TH x\n'q\na\\b-c"));
    }

    @Test
    void writesPagesAndCompletions(@TempDir Path out) throws Exception {
        CommandDocs.main(new String[] {out.toString()});
        String completion = Files.readString(out.resolve("bash-completion/vportd"));
        for (CommandLine.Model.OptionSpec o : VportdCommand.commandLine().getCommandSpec().options()) {
            for (String name : o.names()) {
                assertTrue(completion.contains(name), "completion lacks " + name);
            }
        }
        assertTrue(completion.contains("complete -F"), completion);
        String ctlCompletion = Files.readString(out.resolve("bash-completion/vportd-ctl"));
        assertTrue(ctlCompletion.contains("list-ports") && ctlCompletion.contains("--api-socket"), ctlCompletion);
        assertTrue(Files.readString(out.resolve("man1/vportd.1")).contains(".SH OPTIONS"));
        assertTrue(Files.readString(out.resolve("man1/vportd-ctl.1")).contains(".SH COMMANDS"));
    }
}
