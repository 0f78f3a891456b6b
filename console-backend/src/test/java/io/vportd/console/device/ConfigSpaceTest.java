package io.vportd.console.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class ConfigSpaceTest {

    @Test
    void readsLittleEndianFields() {
        ConfigSpace c = new ConfigSpace(31);
        c.size(132, 43);
        byte[] all = new byte[12];
        c.read(0, all);
        assertArrayEquals(new byte[] {(byte) 132, 0, 43, 0, 31, 0, 0, 0, 0, 0, 0, 0}, all);
        byte[] max = new byte[4];
        c.read(4, max);
        assertArrayEquals(new byte[] {31, 0, 0, 0}, max);
    }

    @Test
    void emergencyCharacterOnlyFromWritesCoveringItsLowByte() {
        assertEquals('A', ConfigSpace.emergencyCharacter(8, new byte[] {'A', 0, 0, 0}));
        assertEquals('B', ConfigSpace.emergencyCharacter(8, new byte[] {'B'}));
        assertEquals('C', ConfigSpace.emergencyCharacter(4, new byte[] {0, 0, 0, 0, 'C', 0, 0, 0}));
        assertEquals(ConfigSpace.NO_CHARACTER, ConfigSpace.emergencyCharacter(0, new byte[] {1, 2}));
        assertEquals(ConfigSpace.NO_CHARACTER, ConfigSpace.emergencyCharacter(9, new byte[] {1}));
    }
}
