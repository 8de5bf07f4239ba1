using System.Formats.Tar;
using System.IO.Compression;
using MoCo.Model.Data;
using SkiaSharp;

namespace MoCo.Model.Tests;

/// <summary>Builds small images, encodes them with SkiaSharp, and writes image-folder trees and archives for the data set tests.</summary>
public static class DatasetTestImages
{
    /// <summary>A deterministic RGB image whose pixels depend on <paramref name="seed"/>.</summary>
    public static ImageU8 Make(int width, int height, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[width * height * 3];
        random.NextBytes(pixels);
        return new ImageU8(pixels, height, width);
    }

    /// <summary>PNG bytes of an RGB image, optionally with an alpha channel of varying values (which the decoder must drop).</summary>
    public static byte[] EncodePng(ImageU8 image, bool withAlpha = false) => Encode(image, SKEncodedImageFormat.Png, 100, withAlpha);

    /// <summary>JPEG bytes of an RGB image.</summary>
    public static byte[] EncodeJpeg(ImageU8 image, int quality = 90) => Encode(image, SKEncodedImageFormat.Jpeg, quality, false);

    /// <summary>An 8-bit grayscale PNG of the given gray values (row-major).</summary>
    public static byte[] EncodeGrayPng(byte[] gray, int width, int height)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Gray8, SKAlphaType.Opaque));
        System.Runtime.InteropServices.Marshal.Copy(gray, 0, bitmap.GetPixels(), gray.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>
    /// Writes class folders under <paramref name="root"/>: for each (class, count), PNG files 000.png, 001.png, ...
    /// whose pixels are <see cref="Make"/>(8, 6, seed) with seeds counting up from <paramref name="firstSeed"/>.
    /// </summary>
    public static void WriteTree(string root, IEnumerable<(string Class, int Count)> classes, int firstSeed = 1)
    {
        int seed = firstSeed;
        foreach (var (name, count) in classes)
        {
            string dir = Path.Combine(root, name);
            Directory.CreateDirectory(dir);
            for (int i = 0; i < count; i++)
            {
                File.WriteAllBytes(Path.Combine(dir, $"{i:D3}.png"), EncodePng(Make(8, 6, seed++)));
            }
        }
    }

    /// <summary>Packs a directory's contents into a .tar.gz (entries relative to the directory).</summary>
    public static void WriteTarGz(string sourceDirectory, string archivePath)
    {
        using var file = File.Create(archivePath);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        TarFile.CreateFromDirectory(sourceDirectory, gzip, includeBaseDirectory: false);
    }

    private static byte[] Encode(ImageU8 image, SKEncodedImageFormat format, int quality, bool withAlpha)
    {
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, withAlpha ? SKAlphaType.Unpremul : SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var rgba = new byte[image.Width * image.Height * 4];
        for (int p = 0; p < image.Width * image.Height; p++)
        {
            rgba[4 * p] = image.Pixels[3 * p];
            rgba[4 * p + 1] = image.Pixels[3 * p + 1];
            rgba[4 * p + 2] = image.Pixels[3 * p + 2];
            rgba[4 * p + 3] = withAlpha ? (byte)(64 + p % 128) : (byte)255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(format, quality);
        return data.ToArray();
    }
}
