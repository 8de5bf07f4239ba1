using MoCo.Model.Files;
using SkiaSharp;

namespace MoCo.Model.Data;

/// <summary>
/// Decodes JPEG, PNG, BMP and WebP (anything SkiaSharp's codecs read) to RGB uint8, HWC.
/// Grayscale is replicated to three channels, CMYK is converted by the codec, alpha is dropped without
/// compositing (as PIL's <c>convert("RGB")</c>), and no colour-space conversion is applied, so the bytes
/// of a PNG come back exactly as they were encoded.
/// Every file is hostile until checked: the header's size is bounded (<see cref="MaxSide"/>, <see cref="MaxPixels"/>)
/// before any pixel buffer is allocated, an encoded file is bounded (<see cref="MaxEncodedBytes"/>) before it is read,
/// and a path must lead to a regular file (see <see cref="RegularFile"/>: a named pipe is never opened, symbolic links
/// are followed to regular files only). Each refusal is an <see cref="InvalidDataException"/> naming the problem.
/// </summary>
public static class ImageDecoder
{
    /// <summary>
    /// The longest side decoded, in pixels: 16384, above the long side of every camera sensor (the largest, 150-megapixel
    /// medium format, is 14204 pixels wide) and far above the images of common data sets (ImageNet, OpenImages, COCO);
    /// a header that claims more is refused. It also keeps every row and every size below in <see cref="int"/> range
    /// whatever the header says.
    /// </summary>
    public const int MaxSide = 16384;

    /// <summary>
    /// The most pixels decoded: 64 Mi (8192 x 8192, 67.1 megapixels), above the 61-megapixel full-frame sensors and the
    /// largest images of common data sets; medium-format photographs (100 and 150 megapixels) are refused and must be
    /// downscaled first. One decode then holds at most 448 MiB (the codec's RGBA and our RGB copy), so a few loader
    /// threads fit a worker's memory even when a header lies about the size of a 100-byte file.
    /// </summary>
    public const long MaxPixels = 64L * 1024 * 1024;

    /// <summary>
    /// The largest encoded image read, in bytes: 256 MiB, the raw RGBA size of the largest image decoded
    /// (<see cref="MaxPixels"/> x 4). No 8-bit encoding of an image we accept needs more; a compressed one far less.
    /// </summary>
    public const int MaxEncodedBytes = 256 * 1024 * 1024;

    /// <summary>Decodes an encoded image held in memory.</summary>
    /// <exception cref="InvalidDataException">
    /// The bytes are empty, larger than <see cref="MaxEncodedBytes"/>, not an image the codecs can fully decode
    /// (truncated, corrupt), or declare a size outside <see cref="MaxSide"/> and <see cref="MaxPixels"/>.
    /// </exception>
    public static unsafe ImageU8 Decode(ReadOnlySpan<byte> encoded)
    {
        if (encoded.IsEmpty)
        {
            throw new InvalidDataException("empty file");
        }
        if (encoded.Length > MaxEncodedBytes)
        {
            throw new InvalidDataException($"{encoded.Length} bytes, more than the {MaxEncodedBytes}-byte limit for an image file");
        }
        fixed (byte* p = encoded)
        {
            using var data = SKData.Create((IntPtr)p, encoded.Length, null);
            using var codec = SKCodec.Create(data)
                ?? throw new InvalidDataException("not a recognised image format");
            return DecodeWith(codec);
        }
    }

    /// <summary>Decodes an image file, following symbolic links to a regular file.</summary>
    /// <exception cref="FileNotFoundException">Nothing is at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">
    /// The file cannot be decoded for any reason <see cref="Decode(ReadOnlySpan{byte})"/> gives, or the path is not a
    /// regular file (a directory, a named pipe, a device, a dangling link or a loop of links); the message names the file.
    /// </exception>
    public static ImageU8 Decode(string path)
    {
        try
        {
            return Decode(RegularFile.ReadAllBytes(path, MaxEncodedBytes));
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot decode image '{path}': {e.Message}", e);
        }
    }

    /// <summary>
    /// Reads only the header: the width and height, or false when the bytes are not a recognised image, or are or declare
    /// more than decoding accepts (<see cref="MaxEncodedBytes"/>, <see cref="MaxSide"/>, <see cref="MaxPixels"/>).
    /// </summary>
    public static unsafe bool TryReadSize(ReadOnlySpan<byte> encoded, out int width, out int height)
    {
        if (encoded.IsEmpty || encoded.Length > MaxEncodedBytes)
        {
            return SizeOf(null, out width, out height);
        }
        fixed (byte* p = encoded)
        {
            using var data = SKData.Create((IntPtr)p, encoded.Length, null);
            using var codec = SKCodec.Create(data);
            return SizeOf(codec, out width, out height);
        }
    }

    /// <summary>
    /// Reads only the header of a file: the width and height, or false when it is missing, unreadable, not a regular
    /// file (never opening a named pipe), larger than <see cref="MaxEncodedBytes"/>, not an image, or of a size that
    /// decoding would refuse.
    /// </summary>
    public static bool TryReadSize(string path, out int width, out int height)
    {
        try
        {
            if (RegularFile.Length(path) > MaxEncodedBytes)
            {
                return SizeOf(null, out width, out height);
            }
            using var codec = SKCodec.Create(path);
            return SizeOf(codec, out width, out height);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return SizeOf(null, out width, out height);
        }
    }

    /// <summary>Why an image of <paramref name="width"/> x <paramref name="height"/> is not decoded, or null when it is.</summary>
    internal static string? SizeProblem(int width, int height)
    {
        if (width <= 0 || height <= 0)
        {
            return $"invalid image size {width}x{height}";
        }
        if (width > MaxSide || height > MaxSide)
        {
            return $"image size {width}x{height} exceeds the {MaxSide}-pixel limit on a side";
        }
        long pixels = (long)width * height;
        if (pixels > MaxPixels)
        {
            return $"image size {width}x{height} ({pixels} pixels) exceeds the {MaxPixels}-pixel limit";
        }
        return null;
    }

    private static bool SizeOf(SKCodec? codec, out int width, out int height)
    {
        if (codec is null || SizeProblem(codec.Info.Width, codec.Info.Height) is not null)
        {
            width = 0;
            height = 0;
            return false;
        }
        width = codec.Info.Width;
        height = codec.Info.Height;
        return true;
    }

    private static unsafe ImageU8 DecodeWith(SKCodec codec)
    {
        int width = codec.Info.Width;
        int height = codec.Info.Height;
        if (SizeProblem(width, height) is { } problem)
        {
            throw new InvalidDataException(problem);
        }

        // Unpremultiplied RGBA with no colour space: the codec neither composites alpha nor converts colours.
        // The bounds above keep every size here within int: at most MaxPixels x 4 bytes.
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        int pixels = checked(width * height);
        byte[] rgba = new byte[checked(pixels * 4)];
        SKCodecResult result;
        fixed (byte* dst = rgba)
        {
            result = codec.GetPixels(info, (IntPtr)dst);
        }
        if (result != SKCodecResult.Success)
        {
            throw new InvalidDataException(result == SKCodecResult.IncompleteInput
                ? $"truncated: the data ends before the {width}x{height} image does ({result})"
                : $"decoding failed ({result})");
        }

        byte[] rgb = new byte[checked(pixels * 3)];
        for (int i = 0, s = 0, d = 0; i < pixels; i++, s += 4, d += 3)
        {
            rgb[d] = rgba[s];
            rgb[d + 1] = rgba[s + 1];
            rgb[d + 2] = rgba[s + 2];
        }
        return new ImageU8(rgb, height, width);
    }
}
