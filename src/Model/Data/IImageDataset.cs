namespace MoCo.Model.Data;

/// <summary>A labelled set of RGB images. Indices are stable: the epoch order and the augmentation are keyed by them.</summary>
public interface IImageDataset
{
    /// <summary>Number of usable images (corrupt ones already skipped).</summary>
    int Count { get; }

    /// <summary>Class names; a label is an index into this list.</summary>
    IReadOnlyList<string> Classes { get; }

    /// <summary>The label of image <paramref name="index"/>.</summary>
    int Label(int index);

    /// <summary>The decoded image (cached or decoded on demand). Safe to call from several threads.</summary>
    ImageU8 Image(int index);
}

/// <summary>A data set that can hand out its images as they were encoded on disk (for copying them into shards unchanged).</summary>
public interface IEncodedImageDataset : IImageDataset
{
    /// <summary>The encoded file of image <paramref name="index"/>, or null when only its decoded pixels are held.</summary>
    /// <exception cref="InvalidDataException">The bytes cannot be read (the message names where from).</exception>
    byte[]? EncodedBytes(int index);
}
