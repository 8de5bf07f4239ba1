namespace MoCo.Model.Data;

/// <summary>
/// Per-thread scratch buffers for the augmentation hot path. They only grow, so a thread that augments
/// images of a steady size allocates nothing after its first image. Contents never survive a call.
/// </summary>
internal sealed class AugmentScratch
{
    [ThreadStatic]
    private static AugmentScratch? _current;

    private float[] _rows = [];
    private float[] _plane = [];
    private float[] _coefH = [];
    private float[] _coefV = [];
    private int[] _boundsH = [];
    private int[] _boundsV = [];

    /// <summary>The calling thread's scratch.</summary>
    public static AugmentScratch Current => _current ??= new AugmentScratch();

    /// <summary>Intermediate rows of the separable resize (three planes).</summary>
    public Span<float> Rows(int length) => Grow(ref _rows, length).AsSpan(0, length);

    /// <summary>One image plane for the separable blur.</summary>
    public Span<float> Plane(int length) => Grow(ref _plane, length).AsSpan(0, length);

    /// <summary>Horizontal resize coefficients.</summary>
    public Span<float> CoefH(int length) => Grow(ref _coefH, length).AsSpan(0, length);

    /// <summary>Vertical resize coefficients.</summary>
    public Span<float> CoefV(int length) => Grow(ref _coefV, length).AsSpan(0, length);

    /// <summary>Horizontal resize bounds (first tap, tap count) per output column.</summary>
    public Span<int> BoundsH(int length) => Grow(ref _boundsH, length).AsSpan(0, length);

    /// <summary>Vertical resize bounds (first tap, tap count) per output row.</summary>
    public Span<int> BoundsV(int length) => Grow(ref _boundsV, length).AsSpan(0, length);

    private static T[] Grow<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
        {
            buffer = new T[Math.Max(length, buffer.Length * 2)];
        }
        return buffer;
    }
}
