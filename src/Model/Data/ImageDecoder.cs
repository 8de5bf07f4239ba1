using SkiaSharp;

namespace MoCo.Model.Data;

/// <summary>
/// Decodes JPEG, PNG, BMP and WebP (anything SkiaSharp's codecs read) to RGB uint8, HWC.
/// Grayscale is replicated to three channels, CMYK is converted by the codec, alpha is dropped without
/// compositing (as PIL's <c>convert("RGB")</c>), and no colour-space conversion is applied, so the bytes
/// of a PNG come back exactly as they were encoded.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Decodes an encoded image held in memory.</summary>
    /// <exception cref="InvalidDataException">The bytes are not an image the codecs can fully decode.</exception>
    public static unsafe ImageU8 Decode(ReadOnlySpan<byte> encoded)
    {
        if (encoded.IsEmpty)
        {
            throw new InvalidDataException("empty file");
        }
        fixed (byte* p = encoded)
        {
            using var data = SKData.Create((IntPtr)p, encoded.Length, null);
            using var codec = SKCodec.Create(data)
                ?? throw new InvalidDataException("not a recognised image format");
            return DecodeWith(codec);
        }
    }

    /// <summary>Decodes an image file.</summary>
    /// <exception cref="InvalidDataException">The file is not an image the codecs can fully decode (the message names it).</exception>
    public static ImageU8 Decode(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        try
        {
            return Decode(bytes);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Cannot decode image '{path}': {e.Message}", e);
        }
    }

    /// <summary>Reads only the header: the width and height, or false when the bytes are not a recognised image.</summary>
    public static unsafe bool TryReadSize(ReadOnlySpan<byte> encoded, out int width, out int height)
    {
        if (encoded.IsEmpty)
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

    /// <summary>Reads only the header of a file: the width and height, or false when it is missing, unreadable or not an image.</summary>
    public static bool TryReadSize(string path, out int width, out int height)
    {
        try
        {
            using var codec = SKCodec.Create(path);
            return SizeOf(codec, out width, out height);
        }
        catch (IOException)
        {
            width = 0;
            height = 0;
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            width = 0;
            height = 0;
            return false;
        }
    }

    private static bool SizeOf(SKCodec? codec, out int width, out int height)
    {
        if (codec is null || codec.Info.Width <= 0 || codec.Info.Height <= 0)
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
        if (width <= 0 || height <= 0)
        {
            throw new InvalidDataException($"invalid image size {width}x{height}");
        }

        // Unpremultiplied RGBA with no colour space: the codec neither composites alpha nor converts colours.
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        int pixels = width * height;
        byte[] rgba = new byte[pixels * 4];
        SKCodecResult result;
        fixed (byte* dst = rgba)
        {
            result = codec.GetPixels(info, (IntPtr)dst);
        }
        if (result != SKCodecResult.Success)
        {
            throw new InvalidDataException($"decoding failed ({result})");
        }

        byte[] rgb = new byte[pixels * 3];
        for (int i = 0, s = 0, d = 0; i < pixels; i++, s += 4, d += 3)
        {
            rgb[d] = rgba[s];
            rgb[d + 1] = rgba[s + 1];
            rgb[d + 2] = rgba[s + 2];
        }
        return new ImageU8(rgb, height, width);
    }
}
