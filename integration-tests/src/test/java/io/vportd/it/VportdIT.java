package io.vportd.it;

/** The same real-guest scenarios as the built-in device, now served by vportd over vhost-user. */
class VportdIT extends VirtioSerialScenarios {

    private static final SerialDeviceUnderTest DEVICE = new VportdDevice();

    @Override
    protected SerialDeviceUnderTest device() {
        return DEVICE;
    }
}
