namespace MoCo.Model.Training;

/// <summary>What a random stream is used for; part of the key, so that streams never overlap.</summary>
public enum RngStream : ulong
{
    EpochOrder = 1,
    Augmentation = 2,
    ShuffleBn = 3,
    QueueInit = 4,
    ModelInit = 5,
    LinearProbe = 6,
    Synthetic = 7,
    ShardOrder = 8,
}

/// <summary>
/// A counter-based random stream: everything random in a run is a function of (seed, stream, epoch, index),
/// never of the order in which workers or threads ask (docs/architecture.md, Invariants, I2).
/// SplitMix64 over a key hashed from those four numbers; cheap to create, so one per image per view.
/// </summary>
public struct CounterRng
{
    private ulong _state;

    public CounterRng(ulong seed, RngStream stream, ulong epoch, ulong index, ulong sub = 0)
    {
        ulong h = Mix(seed + 0x9E3779B97F4A7C15UL);
        h = Mix(h ^ ((ulong)stream * 0xBF58476D1CE4E5B9UL));
        h = Mix(h ^ (epoch * 0x94D049BB133111EBUL + 0x632BE59BD9B4E019UL));
        h = Mix(h ^ (index * 0xD6E8FEB86659FD93UL + 0x8CB92BA72F3D8DD7UL));
        h = Mix(h ^ (sub * 0x9E3779B97F4A7C15UL + 0x2545F4914F6CDD1DUL));
        _state = h;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [a, b).</summary>
    public double Uniform(double a, double b) => a + (b - a) * NextDouble();

    /// <summary>True with probability p.</summary>
    public bool Bernoulli(double p) => NextDouble() < p;

    /// <summary>Uniform integer in [0, n), unbiased (Lemire's method).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "must be positive");
        ulong range = (ulong)n;
        ulong x = NextUInt64();
        UInt128 m = (UInt128)x * range;
        ulong low = (ulong)m;
        if (low < range)
        {
            ulong threshold = (0UL - range) % range;
            while (low < threshold)
            {
                x = NextUInt64();
                m = (UInt128)x * range;
                low = (ulong)m;
            }
        }
        return (int)(m >> 64);
    }

    /// <summary>Uniform integer in [lo, hi] inclusive.</summary>
    public int NextInt(int lo, int hi) => lo + NextInt(hi - lo + 1);

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A uniformly random permutation of 0..n-1.</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        Shuffle<int>(p);
        return p;
    }

    /// <summary>Standard normal (Box–Muller).</summary>
    public double NextGaussian()
    {
        double u1 = 1.0 - NextDouble();
        double u2 = NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
    }
}
