"""Sensor lines from a serial port (a microcontroller's UART, a USB serial bridge) through pyserial.

:func:`open_serial_lines` opens the port and gives a :class:`~.lines.LineSource` over its text
lines, parsed like lines on stdin (garbled lines skipped and counted). :class:`SerialLines`
reads whole lines as they arrive (bytes that are not UTF-8 become U+FFFD, so such a line is
skipped as garbled); a port that cannot be opened, or that stops working while it is read (a
cable pulled out, a board reset), is an :class:`~edgernn.errors.AudioSourceError`. A serial
port has no end: the stream runs until Ctrl-C or until the port goes away.
"""
from ..errors import AudioSourceError
from .extras import import_extra
from .lines import LineSource

#: the default speed of the port, in baud
BAUD = 115200


def _serial():
    return import_extra("serial", "pyserial", "reading a serial port")


class SerialLines:
    """Text lines (str, with their newline) from the serial port at ``port`` (a path such as
    /dev/ttyUSB0, /dev/ttyACM0, /dev/serial0) at ``baud`` baud, 8N1."""

    def __init__(self, port, baud=BAUD):
        serial = _serial()
        self.port_name, self.lines = port, 0
        try:
            self.port = serial.Serial(port, int(baud), timeout=None)
        except (serial.SerialException, OSError, ValueError) as e:
            raise AudioSourceError(f"cannot open the serial port {port!r} at {baud} baud ({e}); list the ports with "
                                   "`python -m serial.tools.list_ports` (on Linux your user needs the dialout group)") \
                from None
        self._errors = (serial.SerialException, OSError)

    def __iter__(self):
        try:
            while True:
                try:
                    raw = self.port.readline()
                except self._errors as e:
                    raise AudioSourceError(f"the serial port {self.port_name!r} stopped after {self.lines} line(s) "
                                           f"({e}): was it unplugged or reset?") from None
                if raw:
                    self.lines += 1
                    yield raw.decode("utf-8", errors="replace")
        finally:
            self.port.close()


def open_serial_lines(port, fields, baud=BAUD):
    """A :class:`~.lines.LineSource` of samples float32 [1, ``fields``] from the lines of a serial
    port."""
    return LineSource(SerialLines(port, baud), fields)
