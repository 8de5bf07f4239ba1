namespace MoCo.Model.Data;

/// <summary>
/// The deterministic evaluation transform of main_lincls.py: Resize(R) (shorter side to R, PIL bilinear with
/// antialias, the longer side to int(R * long / short)), CenterCrop(S) (offsets round((size - S) / 2)), Normalize.
/// An image that already measures S x S is only normalised (e.g. CIFAR's 32 x 32 test images).
/// </summary>
public sealed class EvalTransform
{
    private readonly int _resizeShorter;
    private readonly int _cropSize;
    private readonly (float R, float G, float B) _mean;
    private readonly (float R, float G, float B) _std;

    /// <summary>Creates the transform.</summary>
    /// <param name="resizeShorter">R: the shorter side after the resize; at least <paramref name="cropSize"/>.</param>
    /// <param name="cropSize">S: side of the square output.</param>
    /// <param name="mean">Normalisation means per channel.</param>
    /// <param name="std">Normalisation standard deviations per channel.</param>
    public EvalTransform(int resizeShorter, int cropSize, (float R, float G, float B) mean, (float R, float G, float B) std)
    {
        if (cropSize <= 0 || resizeShorter < cropSize)
        {
            throw new ArgumentException($"Need 0 < crop size <= resize size, got resize {resizeShorter}, crop {cropSize}.");
        }
        if (!(std.R > 0 && std.G > 0 && std.B > 0))
        {
            throw new ArgumentException($"Std must be positive, got {std}.", nameof(std));
        }
        _resizeShorter = resizeShorter;
        _cropSize = cropSize;
        _mean = mean;
        _std = std;
    }

    /// <summary>ImageNet evaluation: Resize(256), CenterCrop(224), ImageNet normalisation (scaled for other sizes).</summary>
    /// <param name="resizeShorter">R (256 in main_lincls.py).</param>
    /// <param name="cropSize">S (224).</param>
    public static EvalTransform ImageNet(int resizeShorter = 256, int cropSize = 224) =>
        new(resizeShorter, cropSize, AugmentationSettings.ImageNetMean, AugmentationSettings.ImageNetStd);

    /// <summary>CIFAR evaluation of the MoCo demo: ToTensor + Normalize with the demo's CIFAR statistics.</summary>
    /// <param name="size">Image side (32).</param>
    public static EvalTransform Cifar(int size = 32) =>
        new(size, size, AugmentationSettings.CifarMean, AugmentationSettings.CifarStd);

    /// <summary>Side of the output.</summary>
    public int Size => _cropSize;

    /// <summary>Number of floats in one output: 3 x S x S.</summary>
    public int OutputLength => 3 * _cropSize * _cropSize;

    /// <summary>Writes the normalised S x S view of <paramref name="image"/> to <paramref name="destinationChw"/> (CHW).</summary>
    /// <param name="image">The decoded image.</param>
    /// <param name="destinationChw">Receives 3 x S x S floats.</param>
    public void Apply(in ImageU8 image, Span<float> destinationChw)
    {
        Augmenter.CheckImage(image);
        int s = _cropSize;
        int plane = s * s;
        if (destinationChw.Length != 3 * plane)
        {
            throw new ArgumentException($"Destination must hold {3 * plane} floats, got {destinationChw.Length}.", nameof(destinationChw));
        }

        if (image.Height == s && image.Width == s)
        {
            byte[] px = image.Pixels;
            for (int i = 0; i < plane; i++)
            {
                destinationChw[i] = px[3 * i] / 255f;
                destinationChw[plane + i] = px[3 * i + 1] / 255f;
                destinationChw[2 * plane + i] = px[3 * i + 2] / 255f;
            }
        }
        else
        {
            // torchvision _compute_resized_output_size: the shorter side becomes R, the longer int(R * long / short).
            int h = image.Height;
            int w = image.Width;
            int newH;
            int newW;
            if (h <= w)
            {
                newH = _resizeShorter;
                newW = (int)((long)_resizeShorter * w / h);
            }
            else
            {
                newW = _resizeShorter;
                newH = (int)((long)_resizeShorter * h / w);
            }
            // torchvision center_crop: top = int(round((H - S) / 2.0)), Python's round (half to even).
            int top = (int)Math.Round((newH - s) / 2.0, MidpointRounding.ToEven);
            int left = (int)Math.Round((newW - s) / 2.0, MidpointRounding.ToEven);
            var whole = new CropBox(0, 0, h, w);
            PilResampler.ResizeToPlanar(image, whole, newH, newW, top, left, s, s, destinationChw, AugmentScratch.Current);
        }
        Augmenter.Normalize(destinationChw, plane, _mean, _std);
    }
}
