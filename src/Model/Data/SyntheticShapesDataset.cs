using MoCo.Model.Training;

namespace MoCo.Model.Data;

/// <summary>
/// A built-in labelled data set for the quickstart, procedural from a seed (no files): small RGB images of ten shape and
/// texture kinds (the class) at a random position and size, nearly upright (within about 17 degrees), with stripe
/// periods in a narrow band and light pixel noise, in two different colours of a small palette. The nuisances are
/// what MoCo's augmentations randomise (position, scale, colour), so that instance discrimination has to rely on shape. Colour is drawn independently of the class, so it does not predict the label while shape does:
/// a random encoder, which mostly sees colour, scores near chance, and a contrastively trained one can do better.
/// Image i of a split is a pure function of (seed, split, i): it uses <see cref="CounterRng"/> and only +, -, *, /,
/// sqrt and floor, so it is the same on every machine. Labels cycle (i mod 10), so classes are balanced.
/// Images are rendered lazily on first use and then kept (a 32x32 image is 3 KiB).
/// </summary>
public sealed class SyntheticShapesDataset : IImageDataset
{
    /// <summary>Default number of train images.</summary>
    public const int DefaultTrainCount = 5000;

    /// <summary>Default number of test images.</summary>
    public const int DefaultTestCount = 1000;

    /// <summary>Default image side in pixels.</summary>
    public const int DefaultSize = 32;

    private const int Supersample = 4;
    private const double NoiseSigma = 3.0;
    private static readonly double[][] Palette =
    [
        [230, 60, 50], [60, 180, 75], [40, 90, 220], [250, 210, 40],
        [240, 240, 240], [30, 30, 30], [150, 70, 200], [70, 200, 210],
    ];
    private const double Sqrt3 = 1.7320508075688772;

    private readonly ulong _seed;
    private readonly bool _train;
    private readonly int _size;
    private readonly byte[]?[] _pixels;

    /// <summary>A split of <paramref name="count"/> images of side <paramref name="size"/>; train and test draw from disjoint random streams.</summary>
    public SyntheticShapesDataset(int count, bool train, ulong seed = 0, int size = DefaultSize)
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
        "disk", "square", "triangle", "cross", "ring",
        "horizontal-stripes", "vertical-stripes", "diagonal-stripes", "checkerboard", "two-dots",
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
        var rng = new CounterRng(_seed, RngStream.Synthetic, _train ? 0UL : 1UL, (ulong)index);
        double size = _size;

        // Colours: a foreground and a different background from a small palette, independent of the class. With
        // few colours, colour says little about which image a view came from, so contrastive learning must use
        // the shape and its geometry to tell instances apart, and the shape is what predicts the class.
        int bg = rng.NextInt(Palette.Length);
        int fg = (bg + 1 + rng.NextInt(Palette.Length - 1)) % Palette.Length;
        ReadOnlySpan<double> background = Palette[bg];
        ReadOnlySpan<double> foreground = Palette[fg];

        // Geometry: the same draws for every class, so that the class changes only the shape.
        var shape = new Shape
        {
            Kind = kind,
            CentreX = size * rng.Uniform(0.3, 0.7),
            CentreY = size * rng.Uniform(0.3, 0.7),
            Radius = size * rng.Uniform(0.22, 0.4),
            Period = size / 32.0 * rng.Uniform(5.5, 6.5),
            Phase = rng.NextDouble(),
            Phase2 = rng.NextDouble(),
        };
        (shape.Cos, shape.Sin) = Rotation(ref rng, 0.15, false);
        (shape.JitterCos, shape.JitterSin) = Rotation(ref rng, 0.09, false);
        shape.DiagonalSign = rng.Bernoulli(0.5) ? 1.0 : -1.0;

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
                        if (shape.Contains(x + (sx + 0.5) * step, y + (sy + 0.5) * step))
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

    /// <summary>A rotation (cos, sin) from the rational parametrisation of the circle, t in [-limit, limit]; optionally turned by 180 degrees half the time.</summary>
    private static (double Cos, double Sin) Rotation(ref CounterRng rng, double limit, bool fullTurn)
    {
        double t = rng.Uniform(-limit, limit);
        double denominator = 1.0 + t * t;
        double cos = (1.0 - t * t) / denominator;
        double sin = 2.0 * t / denominator;
        if (fullTurn && rng.Bernoulli(0.5))
        {
            return (-cos, -sin);
        }
        return (cos, sin);
    }

    private static bool IsEven(double value) => ((long)Math.Floor(value) & 1L) == 0;

    /// <summary>One image's shape: its kind and the drawn geometry; <see cref="Contains"/> says whether a point is foreground.</summary>
    private struct Shape
    {
        public int Kind;
        public double CentreX;
        public double CentreY;
        public double Radius;
        public double Cos;
        public double Sin;
        public double JitterCos;
        public double JitterSin;
        public double Period;
        public double Phase;
        public double Phase2;
        public double DiagonalSign;

        public readonly bool Contains(double px, double py)
        {
            double dx = px - CentreX;
            double dy = py - CentreY;
            double u = (Cos * dx + Sin * dy) / Radius;
            double v = (-Sin * dx + Cos * dy) / Radius;
            double r2 = u * u + v * v;
            bool inPatch = dx * dx + dy * dy <= 1.44 * Radius * Radius;
            switch (Kind)
            {
                case 0:
                    return r2 <= 1.0;
                case 1:
                    return Math.Abs(u) <= 0.8 && Math.Abs(v) <= 0.8;
                case 2:
                    return v >= -0.5 && Sqrt3 * u + v <= 1.0 && -Sqrt3 * u + v <= 1.0;
                case 3:
                    return (Math.Abs(u) <= 0.28 && Math.Abs(v) <= 1.0) || (Math.Abs(v) <= 0.28 && Math.Abs(u) <= 1.0);
                case 4:
                    return r2 >= 0.3025 && r2 <= 1.0;
                case 5:
                    return inPatch && Stripe(0.0, 1.0, dx, dy);
                case 6:
                    return inPatch && Stripe(1.0, 0.0, dx, dy);
                case 7:
                    return inPatch && Stripe(0.7071067811865476, 0.7071067811865476 * DiagonalSign, dx, dy);
                case 8:
                {
                    double cell = 0.75 * Period;
                    double a = (JitterCos * dx + JitterSin * dy) / cell + Phase;
                    double b = (-JitterSin * dx + JitterCos * dy) / cell + Phase2;
                    return inPatch && IsEven(Math.Floor(a) + Math.Floor(b));
                }
                default:
                {
                    const double dot2 = 0.38 * 0.38;
                    return (u - 0.6) * (u - 0.6) + v * v <= dot2 || (u + 0.6) * (u + 0.6) + v * v <= dot2;
                }
            }
        }

        /// <summary>Stripes of half a period wide whose normal is (nx, ny) turned by the small jitter rotation.</summary>
        private readonly bool Stripe(double nx, double ny, double dx, double dy)
        {
            double jx = JitterCos * nx - JitterSin * ny;
            double jy = JitterSin * nx + JitterCos * ny;
            return IsEven(2.0 * ((dx * jx + dy * jy) / Period + Phase));
        }
    }
}
