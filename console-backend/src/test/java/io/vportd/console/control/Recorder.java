package io.vportd.console.control;

import java.util.ArrayList;
import java.util.List;

/** A listener that records every callback as text, in order. */
final class Recorder implements ControlListener {
    final List<String> events = new ArrayList<>();

    @Override public void guestOpened(int id) { events.add("guestOpened " + id); }
    @Override public void guestClosed(int id) { events.add("guestClosed " + id); }
    @Override public void portReady(int id) { events.add("portReady " + id); }
    @Override public void portFailed(int id, String why) { events.add("portFailed " + id); }
    @Override public void deviceReady(boolean ok) { events.add("deviceReady " + ok); }
    @Override public void portRemoved(int id) { events.add("portRemoved " + id); }

    /** Returns the recorded events and forgets them. */
    List<String> take() {
        List<String> copy = List.copyOf(events);
        events.clear();
        return copy;
    }
}
