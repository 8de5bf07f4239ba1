using System.Buffers.Binary;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace MoCo.Model.Checkpoints;

/// <summary>
/// Writes the file facebookresearch/moco's <c>detection/convert-pretrain-to-detectron2.py</c> writes: a Python pickle
/// (protocol 3) of <c>{"model": {name: numpy.ndarray}, "__author__": "MOCO", "matching_heuristics": True}</c>, which
/// detectron2's checkpointer opens with <c>pickle.load(f, encoding="latin1")</c>. Each array is pickled as numpy's own
/// <c>ndarray.__reduce__</c> gives it (<c>numpy.core.multiarray._reconstruct</c>, then <c>__setstate__</c> with shape,
/// dtype and the raw little-endian bytes), so that unpickling needs numpy only. No pickle library for .NET is served
/// here, and the subset is small: dicts, strings, ints, bools, tuples, bytes and these three globals.
/// </summary>
public static class Detectron2Pickle
{
    private const byte Proto = 0x80, Stop = (byte)'.', Mark = (byte)'(', EmptyDict = (byte)'}', SetItems = (byte)'u', Global = (byte)'c',
        BinUnicode = (byte)'X', BinInt = (byte)'J', BinInt1 = (byte)'K', None = (byte)'N', NewTrue = 0x88, NewFalse = 0x89, Tuple = (byte)'t',
        Tuple1 = 0x85, Tuple3 = 0x87, Reduce = (byte)'R', Build = (byte)'b', BinBytes = (byte)'B', ShortBinBytes = (byte)'C';

    /// <summary>Writes <paramref name="model"/> (detectron2 names, in order) to <paramref name="stream"/>.</summary>
    /// <exception cref="ArgumentException">A tensor of a dtype numpy has no equivalent for (bf16), or over 2 GiB.</exception>
    public static void Write(Stream stream, IReadOnlyList<KeyValuePair<string, Tensor>> model)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(model);
        var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(Proto);
        w.Write((byte)3);
        w.Write(EmptyDict);
        w.Write(Mark);
        String(w, "model");
        w.Write(EmptyDict);
        if (model.Count > 0)
        {
            w.Write(Mark);
            foreach (var (name, tensor) in model)
            {
                String(w, name);
                Array(w, name, tensor);
            }
            w.Write(SetItems);
        }
        String(w, "__author__");
        String(w, "MOCO");
        String(w, "matching_heuristics");
        w.Write(NewTrue);
        w.Write(SetItems);
        w.Write(Stop);
        w.Flush();
    }

    /// <summary>numpy's dtype string of a tensor's dtype, or null when numpy has none.</summary>
    public static string? NumpyDtype(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "f4",
        ScalarType.Float64 => "f8",
        ScalarType.Float16 => "f2",
        ScalarType.Int64 => "i8",
        ScalarType.Int32 => "i4",
        ScalarType.Byte => "u1",
        ScalarType.Bool => "b1",
        _ => null,
    };

    private static void Array(BinaryWriter w, string name, Tensor tensor)
    {
        var dtype = NumpyDtype(tensor.dtype)
            ?? throw new ArgumentException($"tensor {name} is {tensor.dtype}, which numpy (and so a detectron2 .pkl) cannot hold; export it as float32");
        using var cpu = tensor.detach().cpu().contiguous();
        long bytes = cpu.NumberOfElements * cpu.ElementSize;
        if (bytes > int.MaxValue)
        {
            throw new ArgumentException($"tensor {name} is {bytes} bytes; one array of a .pkl is at most 2 GiB here");
        }
        // _reconstruct(ndarray, (0,), b'b')
        GlobalName(w, "numpy.core.multiarray", "_reconstruct");
        GlobalName(w, "numpy", "ndarray");
        w.Write(BinInt1);
        w.Write((byte)0);
        w.Write(Tuple1);
        w.Write(ShortBinBytes);
        w.Write((byte)1);
        w.Write((byte)'b');
        w.Write(Tuple3);
        w.Write(Reduce);
        // __setstate__((1, shape, dtype, False, raw bytes))
        w.Write(Mark);
        w.Write(BinInt1);
        w.Write((byte)1);
        w.Write(Mark);
        foreach (long d in cpu.shape)
        {
            Int(w, d);
        }
        w.Write(Tuple);
        // numpy.dtype(dtype, False, True) with state (3, '<' or '|', None, None, None, -1, -1, 0)
        GlobalName(w, "numpy", "dtype");
        String(w, dtype);
        w.Write(NewFalse);
        w.Write(NewTrue);
        w.Write(Tuple3);
        w.Write(Reduce);
        w.Write(Mark);
        w.Write(BinInt1);
        w.Write((byte)3);
        String(w, dtype is "u1" or "b1" ? "|" : "<");
        w.Write(None);
        w.Write(None);
        w.Write(None);
        Int(w, -1);
        Int(w, -1);
        w.Write(BinInt1);
        w.Write((byte)0);
        w.Write(Tuple);
        w.Write(Build);
        w.Write(NewFalse);
        w.Write(BinBytes);
        w.Write((uint)bytes);
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("a big-endian host would write big-endian arrays under a '<' dtype");
        }
        w.Write(cpu.bytes);
        w.Write(Tuple);
        w.Write(Build);
    }

    private static void GlobalName(BinaryWriter w, string module, string name)
    {
        w.Write(Global);
        w.Write(Encoding.ASCII.GetBytes(module + "\n" + name + "\n"));
    }

    private static void String(BinaryWriter w, string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        w.Write(BinUnicode);
        w.Write((uint)utf8.Length);
        w.Write(utf8);
    }

    private static void Int(BinaryWriter w, long value)
    {
        if (value is < int.MinValue or > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "a dimension over 2^31 in a .pkl");
        }
        w.Write(BinInt);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, (int)value);
        w.Write(b);
    }
}
