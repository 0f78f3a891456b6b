package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

class DirtySetTest {

    @Test
    void marksClearsAndIteratesInOrderAcrossWords() {
        DirtySet s = new DirtySet(200);
        assertTrue(s.isEmpty());
        for (int i : new int[] {199, 0, 63, 64, 127, 128, 5, 63}) {
            s.mark(i);
        }
        assertFalse(s.isEmpty());
        assertEquals(List.of(0, 5, 63, 64, 127, 128, 199), all(s));
        assertTrue(s.clear(63));
        assertFalse(s.clear(63));
        assertEquals(64, s.next(6));
        assertEquals(-1, s.next(200));
        for (int i : all(s)) {
            s.clear(i);
        }
        assertTrue(s.isEmpty());
        assertEquals(-1, s.next(0));
    }

    @Test
    void agreesWithASortedSet() {
        Random r = new Random(7);
        DirtySet s = new DirtySet(1000);
        TreeSet<Integer> model = new TreeSet<>();
        for (int step = 0; step < 20_000; step++) {
            int i = r.nextInt(1000);
            if (r.nextBoolean()) {
                s.mark(i);
                model.add(i);
            } else {
                assertEquals(model.remove(i), s.clear(i));
            }
            assertEquals(model.isEmpty(), s.isEmpty());
            int from = r.nextInt(1001);
            Integer expected = model.ceiling(from);
            assertEquals(expected == null ? -1 : expected, s.next(from));
        }
    }

    private static List<Integer> all(DirtySet s) {
        List<Integer> out = new ArrayList<>();
        for (int i = s.next(0); i >= 0; i = s.next(i + 1)) {
            out.add(i);
        }
        return out;
    }
}
