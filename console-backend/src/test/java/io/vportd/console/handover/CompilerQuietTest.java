package io.vportd.console.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CompilerQuietTest {

    @Test
    void cpuTimeIsReadAfterTheLastParenthesisOfTheName() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        String stat = "4711 (C2 CompilerThre) S 1 4700 4700 0 -1 4194624 10 0 0 0 37 5 0 0 20 0 20 0 100\n";
        assertEquals(42, CompilerQuiet.cpuTicks(stat));
        String odd = "4711 (a) b (c)) R 1 4700 4700 0 -1 4194624 10 0 0 0 3 4 0 0 20 0 20 0 100";
        assertEquals(7, CompilerQuiet.cpuTicks(odd));
    }

    @Test
    void unreadableStatLinesGiveMinusOne() {
        assertEquals(-1, CompilerQuiet.cpuTicks("no parenthesis here"));
        assertEquals(-1, CompilerQuiet.cpuTicks("1 (x) S 1 2"));
        assertEquals(-1, CompilerQuiet.cpuTicks("1 (x) S 1 2 3 4 5 6 7 8 9 10 ten 12 13"));
    }

    @Test
    void compilerThreadsAreKnownByTheirKernelNames() {
        assertTrue(CompilerQuiet.isCompiler("C2 CompilerThre\n"));
        assertTrue(CompilerQuiet.isCompiler("C1 CompilerThre"));
        assertFalse(CompilerQuiet.isCompiler("vportd-dataplan"));
        assertFalse(CompilerQuiet.isCompiler("GC Thread#0"));
    }

    @Test
    void thisJvmsCompilerThreadsAreFound() {
        // If HotSpot renamed its compiler threads, the wait would silently do nothing: this fails instead.
        assertTrue(CompilerQuiet.compilerTicks() >= 0, "no C1/C2 compiler thread found in /proc/self/task");
    }

    @Test
    void theWaitEndsAtItsLimitEvenWhileTheCompilerWorks() {
        long waited = CompilerQuiet.await(0);
        assertTrue(waited >= 0 && waited < 1000, "waited " + waited + " ms with a limit of 0");
    }
}
