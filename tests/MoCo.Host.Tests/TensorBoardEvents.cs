using System.Buffers.Binary;
using System.Text;

namespace MoCo.Host.Tests;

/// <summary>
/// Reads TensorBoard event files without TensorBoard: the TFRecord framing (uint64 length, uint32 masked CRC of the
/// length, the data, uint32 masked CRC of the data; the CRCs are not checked) around <c>Event</c> protobufs, of which it
/// keeps the step (field 2) and each summary value (field 5, repeated field 1) with its tag (1) and simple value (2).
/// </summary>
public static class TensorBoardEvents
{
    /// <summary>One summary value of one event.</summary>
    /// <param name="Step">The event's step.</param>
    /// <param name="Tag">The value's tag.</param>
    /// <param name="SimpleValue">The scalar, or null for another kind of value (text).</param>
    /// <param name="Raw">The value's encoded bytes (text values carry their string in them).</param>
    public sealed record Value(long Step, string Tag, float? SimpleValue, byte[] Raw);

    /// <summary>Every summary value in the event files under <paramref name="directory"/>, file by file in name order.</summary>
    public static List<Value> ReadAll(string directory) =>
        Directory.GetFiles(directory, "events.out.tfevents.*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .SelectMany(f => Read(File.ReadAllBytes(f))).ToList();

    /// <summary>The summary values of one event file's bytes.</summary>
    public static IEnumerable<Value> Read(byte[] file)
    {
        int at = 0;
        while (at < file.Length)
        {
            if (file.Length - at < 12)
            {
                throw new InvalidDataException($"a record header is cut at byte {at} of {file.Length}");
            }

            long length = (long)BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at));
            at += 12;
            if (length > file.Length - at - 4)
            {
                throw new InvalidDataException($"a record of {length} bytes at byte {at} runs past the file's {file.Length}");
            }

            foreach (var value in ReadEvent(file.AsSpan(at, (int)length).ToArray()))
            {
                yield return value;
            }

            at += (int)length + 4;
        }
    }

    private static List<Value> ReadEvent(byte[] data)
    {
        long step = 0;
        var summaries = new List<byte[]>();
        foreach (var (field, wire, varint, bytes) in Fields(data))
        {
            if (field == 2 && wire == 0)
            {
                step = (long)varint;
            }
            else if (field == 5 && wire == 2)
            {
                summaries.Add(bytes!);
            }
        }

        var values = new List<Value>();
        foreach (var summary in summaries)
        {
            foreach (var (field, wire, _, value) in Fields(summary))
            {
                if (field != 1 || wire != 2)
                {
                    continue;
                }

                string tag = "";
                float? simple = null;
                foreach (var (f, w, v, b) in Fields(value!))
                {
                    if (f == 1 && w == 2)
                    {
                        tag = Encoding.UTF8.GetString(b!);
                    }
                    else if (f == 2 && w == 5)
                    {
                        simple = BitConverter.Int32BitsToSingle((int)v);
                    }
                }

                values.Add(new Value(step, tag, simple, value!));
            }
        }

        return values;
    }

    /// <summary>A value's image (Summary.Value field 4): height, width and the encoded bytes (PNG), or null.</summary>
    public static (int Height, int Width, byte[] Encoded)? Image(Value value)
    {
        foreach (var (field, wire, _, bytes) in Fields(value.Raw))
        {
            if (field == 4 && wire == 2)
            {
                int height = 0, width = 0;
                byte[] encoded = [];
                foreach (var (f, w, n, b) in Fields(bytes!))
                {
                    if (f == 1 && w == 0) height = (int)n;
                    else if (f == 2 && w == 0) width = (int)n;
                    else if (f == 4 && w == 2) encoded = b!;
                }
                return (height, width, encoded);
            }
        }
        return null;
    }

    /// <summary>The fields of a protobuf message: number, wire type, the varint or fixed value, or the bytes of a length-delimited one.</summary>
    private static List<(int Field, int Wire, ulong Number, byte[]? Bytes)> Fields(byte[] message)
    {
        var fields = new List<(int, int, ulong, byte[]?)>();
        int at = 0;
        while (at < message.Length)
        {
            ulong key = Varint(message, ref at);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0:
                    fields.Add((field, wire, Varint(message, ref at), null));
                    break;
                case 1:
                    fields.Add((field, wire, BinaryPrimitives.ReadUInt64LittleEndian(message.AsSpan(at)), null));
                    at += 8;
                    break;
                case 2:
                    int length = (int)Varint(message, ref at);
                    fields.Add((field, wire, 0, message.AsSpan(at, length).ToArray()));
                    at += length;
                    break;
                case 5:
                    fields.Add((field, wire, BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(at)), null));
                    at += 4;
                    break;
                default:
                    throw new InvalidDataException($"protobuf wire type {wire} (field {field}) is not one an Event uses");
            }
        }

        return fields;
    }

    private static ulong Varint(byte[] message, ref int at)
    {
        ulong value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = message[at++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }
    }
}
