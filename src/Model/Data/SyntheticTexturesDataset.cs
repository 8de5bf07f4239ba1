using MoCo.Model.Training;

namespace MoCo.Model.Data;

/// <summary>
/// The built-in labelled data set of the quickstart, procedural from a seed (no files): small RGB images of ten
/// pattern kinds (the class): stripes in three orientations, a checkerboard, a lattice of dots, concentric rings, a
/// grid of lines, one large disk, zigzag stripes and a random speckle of square cells. Each image draws its nuisances
/// independently of the class, and in the ranges that MoCo's v1 augmentations randomise: two colours of any hue (one
/// bright, one dark, either as the pattern), the pattern's position and phase, its period within a narrow band
/// (5 to 7 pixels at 32x32), a small tilt (within about 14 degrees) and light pixel noise.
/// Most patterns fill the image, so any crop of a view still shows the class; the diagonal stripes lean either
/// way, so a horizontal flip keeps the class.
/// <para>
/// A random encoder sees mostly colour and scale, which say nothing about the class; contrastive training learns
/// to ignore what the augmentations change, which leaves the pattern, so the kNN accuracy rises well above the
/// random encoder's within a few epochs (the quickstart's curve in the README).
/// </para>
/// Image i of a split is a pure function of (seed, split, i): it uses <see cref="CounterRng"/> and only +, -, *, /,
/// sqrt, abs and floor, so it is the same on every machine. Labels cycle (i mod 10), so classes are balanced.
/// Images are rendered lazily on first use and then kept (a 32x32 image is 3 KiB).
/// </summary>
public sealed class SyntheticTexturesDataset : IImageDataset
{
    /// <summary>Default number of train images.</summary>
    public const int DefaultTrainCount = 5000;

    /// <summary>Default number of test images.</summary>
    public const int DefaultTestCount = 1000;

    /// <summary>Default image side in pixels.</summary>
    public const int DefaultSize = 32;

    private const int Supersample = 4;
    private const double NoiseSigma = 3.0;
    private const double Sqrt3 = 1.7320508075688772;
    private const double InverseSqrt2 = 0.7071067811865476;

    private readonly ulong _seed;
    private readonly bool _train;
    private readonly int _size;
    private readonly byte[]?[] _pixels;

    /// <summary>A split of <paramref name="count"/> images of side <paramref name="size"/>; train and test draw from disjoint random streams.</summary>
    public SyntheticTexturesDataset(int count, bool train, ulong seed = 0, int size = DefaultSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 8);
        _seed = seed;
        _train = train;
        _size = size;
        _pixels = new byte[]?[count];
    }

    /// <summary>The ten classes, in label order.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
    [
        "horizontal-stripes", "vertical-stripes", "diagonal-stripes", "checkerboard", "dots",
        "rings", "grid", "disk", "zigzag", "speckle",
    ];

    /// <inheritdoc />
    public int Count => _pixels.Length;

    /// <inheritdoc />
    public IReadOnlyList<string> Classes => ClassNames;

    /// <inheritdoc />
    public int Label(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return index % ClassNames.Count;
    }

    /// <summary>The image, rendered on first use and shared afterwards: callers must not modify its pixels. Thread-safe.</summary>
    public ImageU8 Image(int index)
    {
        int label = Label(index);
        byte[]? pixels = Volatile.Read(ref _pixels[index]);
        if (pixels is null)
        {
            byte[] rendered = Render(index, label);
            pixels = Interlocked.CompareExchange(ref _pixels[index], rendered, null) ?? rendered;
        }
        return new ImageU8(pixels, _size, _size);
    }

    private byte[] Render(int index, int kind)
    {
        ulong split = _train ? 0UL : 1UL;
        var rng = new CounterRng(_seed, RngStream.Synthetic, split, (ulong)index);
        double size = _size;

        // Colours: one bright and one dark, each of any hue, independent of the class; which one draws the pattern is
        // a coin toss. MoCo's colour jitter (hue 0.4, brightness, contrast, saturation) and grayscale cover this range.
        Span<double> bright = stackalloc double[3];
        Span<double> dark = stackalloc double[3];
        HsvToRgb(rng.NextDouble(), rng.Uniform(0.3, 1.0), rng.Uniform(0.7, 1.0), bright);
        HsvToRgb(rng.NextDouble(), rng.Uniform(0.3, 1.0), rng.Uniform(0.08, 0.4), dark);
        bool darkPattern = rng.Bernoulli(0.5);

        // Geometry: the same draws for every class, so that the class changes only the pattern.
        double tilt = rng.Uniform(-0.12, 0.12);
        var pattern = new Pattern
        {
            Kind = kind,
            CentreX = size * rng.Uniform(0.3, 0.7),
            CentreY = size * rng.Uniform(0.3, 0.7),
            Period = size / 32.0 * rng.Uniform(5.0, 7.0),
            Phase = rng.NextDouble(),
            Phase2 = rng.NextDouble(),
            Radius = size * rng.Uniform(0.25, 0.42),
            // A rotation from the rational parametrisation of the circle (no trigonometry, so exact everywhere).
            Cos = (1.0 - tilt * tilt) / (1.0 + tilt * tilt),
            Sin = 2.0 * tilt / (1.0 + tilt * tilt),
            DiagonalSign = rng.Bernoulli(0.5) ? 1.0 : -1.0,
            Seed = _seed,
            Split = split,
            Index = (ulong)index,
        };

        ReadOnlySpan<double> foreground = darkPattern ? dark : bright;
        ReadOnlySpan<double> background = darkPattern ? bright : dark;
        var pixels = new byte[_size * _size * 3];
        const double step = 1.0 / Supersample;
        for (int y = 0; y < _size; y++)
        {
            for (int x = 0; x < _size; x++)
            {
                int inside = 0;
                for (int sy = 0; sy < Supersample; sy++)
                {
                    for (int sx = 0; sx < Supersample; sx++)
                    {
                        if (pattern.Contains(x + (sx + 0.5) * step, y + (sy + 0.5) * step))
                        {
                            inside++;
                        }
                    }
                }
                double coverage = inside / (double)(Supersample * Supersample);
                int offset = (y * _size + x) * 3;
                for (int c = 0; c < 3; c++)
                {
                    // Irwin-Hall: the sum of four uniforms, centred and scaled to unit variance (no log or cos, so exact everywhere).
                    double noise = (rng.NextDouble() + rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 2.0) * Sqrt3;
                    double value = background[c] + (foreground[c] - background[c]) * coverage + NoiseSigma * noise;
                    pixels[offset + c] = (byte)Math.Clamp(Math.Round(value), 0.0, 255.0);
                }
            }
        }
        return pixels;
    }

    /// <summary>HSV (each in [0, 1]) to RGB in [0, 255], piecewise linear in the hue.</summary>
    private static void HsvToRgb(double hue, double saturation, double value, Span<double> rgb)
    {
        double h6 = Frac(hue) * 6.0;
        int sector = Math.Min((int)Math.Floor(h6), 5);
        double f = h6 - sector;
        double p = value * (1.0 - saturation);
        double q = value * (1.0 - f * saturation);
        double t = value * (1.0 - (1.0 - f) * saturation);
        (double r, double g, double b) = sector switch
        {
            0 => (value, t, p),
            1 => (q, value, p),
            2 => (p, value, t),
            3 => (p, q, value),
            4 => (t, p, value),
            _ => (value, p, q),
        };
        rgb[0] = 255.0 * r;
        rgb[1] = 255.0 * g;
        rgb[2] = 255.0 * b;
    }

    private static double Frac(double value) => value - Math.Floor(value);

    /// <summary>One image's pattern: its kind and the drawn geometry; <see cref="Contains"/> says whether a point is foreground.</summary>
    private struct Pattern
    {
        public int Kind;
        public double CentreX;
        public double CentreY;
        public double Period;
        public double Phase;
        public double Phase2;
        public double Radius;
        public double Cos;
        public double Sin;
        public double DiagonalSign;
        public ulong Seed;
        public ulong Split;
        public ulong Index;

        public readonly bool Contains(double px, double py)
        {
            double dx = px - CentreX;
            double dy = py - CentreY;
            // Pattern coordinates: tilted, in periods, shifted by the phases.
            double a = (Cos * dx + Sin * dy) / Period + Phase;
            double b = (-Sin * dx + Cos * dy) / Period + Phase2;
            switch (Kind)
            {
                case 0:
                    return Frac(b) < 0.5;
                case 1:
                    return Frac(a) < 0.5;
                case 2:
                    return Frac((a + DiagonalSign * b) * InverseSqrt2) < 0.5;
                case 3:
                    return ((long)Math.Floor(a / 0.8) + (long)Math.Floor(b / 0.8) & 1L) == 0;
                case 4:
                {
                    double u = Frac(a) - 0.5;
                    double v = Frac(b) - 0.5;
                    return u * u + v * v < 0.09;
                }
                case 5:
                    return Frac(Math.Sqrt(dx * dx + dy * dy) / Period + Phase) < 0.5;
                case 6:
                    return Frac(a) < 0.28 || Frac(b) < 0.28;
                case 7:
                    return dx * dx + dy * dy <= Radius * Radius;
                case 8:
                    // Horizontal stripes displaced by a triangle wave of period 2 along a: zigzags at 45 degrees.
                    return Frac(b + Math.Abs(2.0 * Frac(a / 2.0) - 1.0)) < 0.5;
                default:
                {
                    // Square cells of 1/1.6 period, each on or off by a coin drawn from (seed, split, image, cell).
                    long cellA = (long)Math.Floor(a * 1.6);
                    long cellB = (long)Math.Floor(b * 1.6);
                    ulong cell = unchecked(((ulong)cellA << 32) ^ (ulong)cellB);
                    var coin = new CounterRng(Seed, RngStream.Synthetic, Split + 2, Index, cell);
                    return (coin.NextUInt64() & 1UL) == 0;
                }
            }
        }
    }
}
