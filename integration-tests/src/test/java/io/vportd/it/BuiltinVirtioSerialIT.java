package io.vportd.it;

/** The scenarios against QEMU's built-in virtio-serial: proves the scenarios and the rig. */
class BuiltinVirtioSerialIT extends VirtioSerialScenarios {

    private static final SerialDeviceUnderTest DEVICE = new BuiltinVirtioSerial();

    @Override
    protected SerialDeviceUnderTest device() {
        return DEVICE;
    }
}
