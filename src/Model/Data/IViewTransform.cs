using MoCo.Model.Training;

namespace MoCo.Model.Data;

/// <summary>Turns one image into one normalised CHW float view; random draws come only from <paramref name="rng"/>.</summary>
public interface IViewTransform
{
    /// <summary>Side of the square output.</summary>
    int OutputSize { get; }

    void Apply(in ImageU8 image, ref CounterRng rng, Span<float> destinationChw);
}
